//! What a rotation prints: the CAs' fingerprints and, in a dry run, each node's config diff
//! with private keys left out.

use super::plan::Rotation;

/// Names the authority and both CAs by their SHA-256 fingerprints.
pub fn print_new_ca(rotation: &Rotation) {
    let fingerprint = |crt: &str| {
        pki::CertificateInfo::from_pem(crt)
            .map(|info| info.sha256_fingerprint)
            .unwrap_or_default()
    };
    println!("> Rotating the {} CA", rotation.authority.name());
    println!("  old CA (SHA-256): {}", fingerprint(&rotation.old));
    println!(
        "  new CA (SHA-256): {}",
        fingerprint(rotation.new.crt.as_deref().unwrap_or_default())
    );
}

/// The unified diff of two configs, private keys left out.
pub fn diff(before: &str, after: &str) -> String {
    let (before, after) = (redacted(before), redacted(after));
    similar::TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(2)
        .header("current", "new")
        .to_string()
}

/// `key: <value>` lines with the value replaced.
fn redacted(config: &str) -> String {
    config
        .lines()
        .map(|line| match line.trim_start().strip_prefix("key: ") {
            Some(value) if !value.is_empty() => {
                let indent = line.len() - line.trim_start().len();
                format!("{}key: (redacted)\n", &line[..indent])
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_left_out_of_diffs() {
        let before = "machine:\n  ca:\n    crt: AAA\n    key: SECRET1\n  acceptedCAs: []\n";
        let after = "machine:\n  ca:\n    crt: BBB\n    key: SECRET2\n  acceptedCAs: []\n";
        let text = diff(before, after);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("-    crt: AAA\n+    crt: BBB\n"), "{text}");
        assert!(text.contains("     key: (redacted)\n"), "{text}");
        assert_eq!(redacted("key: \n"), "key: \n");
    }

    #[test]
    fn the_first_letter_is_capitalized() {
        assert_eq!(capitalized("adding"), "Adding");
        assert_eq!(capitalized(""), "");
    }
}
