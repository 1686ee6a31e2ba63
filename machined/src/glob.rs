//! Glob patterns as the config uses them (image names of `ImageVerificationConfig`, disk
//! properties of `machine.install.diskSelector`): `*` matches any run of characters, `?` one.

/// The longest name or pattern matched: both come from the config or the machine, and the
/// match costs their product.
const MAX_LEN: usize = 512;

/// Whether `name` matches the glob `pattern`; names and patterns longer than [`MAX_LEN`]
/// never match.
pub fn matches(pattern: &str, name: &str) -> bool {
    if pattern.len() > MAX_LEN || name.len() > MAX_LEN {
        return false;
    }
    let (pattern, name): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), name.chars().collect());
    // matched[j]: the pattern so far matches name[..j].
    let mut matched = vec![false; name.len() + 1];
    matched[0] = true;
    for &p in &pattern {
        let mut next = vec![false; name.len() + 1];
        for j in 0..=name.len() {
            next[j] = match p {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && name[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[name.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", "ghcr.io/a/b"));
        assert!(matches("ghcr.io/*/b", "ghcr.io/a/b"));
        assert!(matches("ghcr.io/?/b", "ghcr.io/a/b"));
        assert!(!matches("ghcr.io/a", "ghcr.io/a/b"));
        assert!(!matches(&"*".repeat(600), "a"));
    }
}
