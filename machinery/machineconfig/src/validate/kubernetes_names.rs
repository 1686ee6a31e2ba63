//! Kubernetes syntax rules for node labels, annotations and taints.

use std::collections::BTreeMap;

/// Total size limit of all annotations of an object (keys plus values).
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A name part: at most 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
fn name_part(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 63 {
        return Err(format!("name part {text:?} must have 1 to 63 characters"));
    }
    let ends_ok = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric());
    let inner_ok = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ends_ok && inner_ok {
        Ok(())
    } else {
        Err(format!(
            "name part {text:?} must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

/// A qualified name (label, annotation or taint key): `[prefix/]name`, prefix a DNS subdomain.
pub fn qualified_name(text: &str) -> Result<(), String> {
    match text.split_once('/') {
        Some((prefix, name)) => {
            super::formats::dns_name(prefix).map_err(|err| format!("prefix of {text:?}: {err}"))?;
            name_part(name)
        }
        None => name_part(text),
    }
}

/// A label value: empty, or a name part.
pub fn label_value(text: &str) -> Result<(), String> {
    if text.is_empty() {
        Ok(())
    } else {
        name_part(text).map_err(|err| format!("label value: {err}"))
    }
}

/// A taint value as written in `nodeTaints`: `Effect` or `value:Effect`.
pub fn taint_value(text: &str) -> Result<(), String> {
    let (value, effect) = text.rsplit_once(':').unwrap_or(("", text));
    if !TAINT_EFFECTS.contains(&effect) {
        return Err(format!(
            "taint effect {effect:?} is not one of NoSchedule, PreferNoSchedule, NoExecute"
        ));
    }
    label_value(value)
}

/// The combined size of annotations.
pub fn annotations_size(annotations: &BTreeMap<String, String>) -> Result<(), String> {
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > ANNOTATIONS_SIZE_LIMIT {
        Err(format!(
            "annotations total {size} bytes, more than the limit of {ANNOTATIONS_SIZE_LIMIT}"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rules() {
        assert!(qualified_name("node.kubernetes.io/exclude-from-external-load-balancers").is_ok());
        assert!(qualified_name("simple").is_ok());
        assert!(qualified_name("Bad_Prefix/x").is_err());
        assert!(qualified_name("a/-x").is_err());
        assert!(qualified_name("a/b/c").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(label_value("has space").is_err());
        assert!(label_value(&"x".repeat(64)).is_err());
    }

    #[test]
    fn taint_rules() {
        assert!(taint_value("NoSchedule").is_ok());
        assert!(taint_value("value:NoExecute").is_ok());
        assert!(taint_value(":PreferNoSchedule").is_ok());
        assert!(taint_value("value:Sometimes").is_err());
        assert!(taint_value("bad value:NoSchedule").is_err());
    }
}
