//! Command lines of the control-plane components: Talos's flags merged with `extraArgs` under
//! upstream's per-flag policies, written as `--flag=value` sorted by flag name.

use std::collections::BTreeMap;

use machineconfig::v1alpha1::{ArgValue, ExtraArgs};

use crate::KubernetesError;

/// How an `extraArgs` value combines with Talos's value of the same flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merge {
    /// The user's value replaces Talos's (every flag not listed otherwise).
    Replace,
    /// Comma-separated lists are united, Talos's items first (`enable-admission-plugins`).
    Additive,
    /// The flag is repeated: Talos's value, then the user's (`service-account-issuer`).
    Append,
    /// Setting the flag is an error (certificate paths and the like).
    Denied,
}

/// Flags by name (without `--`), each with one or more values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags(BTreeMap<String, Vec<String>>);

impl Flags {
    pub(crate) fn new(defaults: &[(&str, &str)]) -> Self {
        Flags(
            defaults
                .iter()
                .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
                .collect(),
        )
    }

    pub(crate) fn set(&mut self, flag: &str, value: impl Into<String>) {
        self.0.insert(flag.to_string(), vec![value.into()]);
    }

    /// Merges `extra` (found at YAML path `key`) using `policy` for each flag.
    pub(crate) fn merge(
        &mut self,
        extra: &ExtraArgs,
        key: &'static str,
        policy: impl Fn(&str) -> Merge,
    ) -> Result<(), KubernetesError> {
        for (flag, value) in extra {
            let values = match value {
                ArgValue::Single(v) => vec![v.clone()],
                ArgValue::List(vs) => vs.clone(),
            };
            match policy(flag) {
                Merge::Denied => {
                    return Err(KubernetesError::DeniedFlag {
                        key,
                        flag: flag.clone(),
                    });
                }
                Merge::Replace => {
                    self.0.insert(flag.clone(), values);
                }
                Merge::Append => self.0.entry(flag.clone()).or_default().extend(values),
                Merge::Additive => {
                    let slot = self.0.entry(flag.clone()).or_default();
                    let mut items: Vec<String> = slot
                        .iter()
                        .flat_map(|v| v.split(','))
                        .filter(|i| !i.is_empty())
                        .map(String::from)
                        .collect();
                    for item in values.iter().flat_map(|v| v.split(',')) {
                        if !item.is_empty() && !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    }
                    *slot = vec![items.join(",")];
                }
            }
        }
        Ok(())
    }

    /// `--flag=value` for every value, flags sorted by name.
    pub(crate) fn render(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|(flag, values)| values.iter().map(move |v| format!("--{flag}={v}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_replace_unite_append_and_deny() {
        let mut flags = Flags::new(&[
            ("enable-admission-plugins", "NodeRestriction"),
            ("service-account-issuer", "https://a:6443"),
            ("profiling", "false"),
            ("tls-cert-file", "/x"),
        ]);
        let extra: ExtraArgs = serde_norway::from_str(
            "enable-admission-plugins: NodeRestriction,AlwaysPullImages\n\
             service-account-issuer: https://b\nprofiling: 'true'\nv: [a, b]\n",
        )
        .unwrap();
        let policy = |flag: &str| match flag {
            "enable-admission-plugins" => Merge::Additive,
            "service-account-issuer" => Merge::Append,
            "tls-cert-file" => Merge::Denied,
            _ => Merge::Replace,
        };
        flags
            .merge(&extra, "cluster.apiServer.extraArgs", policy)
            .unwrap();
        assert_eq!(
            flags.render(),
            [
                "--enable-admission-plugins=NodeRestriction,AlwaysPullImages",
                "--profiling=true",
                "--service-account-issuer=https://a:6443",
                "--service-account-issuer=https://b",
                "--tls-cert-file=/x",
                "--v=a",
                "--v=b",
            ]
        );
        let denied: ExtraArgs = serde_norway::from_str("tls-cert-file: /mine").unwrap();
        let error = flags
            .merge(&denied, "cluster.apiServer.extraArgs", policy)
            .unwrap_err();
        assert!(error.to_string().contains("--tls-cert-file"), "{error}");
    }
}
