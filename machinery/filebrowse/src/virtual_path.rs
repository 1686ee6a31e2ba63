//! Paths as the client sees them: absolute, normalised, in terms of the mount prefixes.

use std::ffi::{OsStr, OsString};
use std::fmt;

/// An absolute, normalised virtual path, kept as its components (`/` has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct VirtualPath {
    components: Vec<OsString>,
}

/// A request path after lexical normalisation.
#[derive(Debug)]
pub(crate) struct Normalised {
    pub(crate) path: VirtualPath,
    /// The fewest components the path had right after a `..` popped one (`None` without `..`).
    pub(crate) lowest_after_parent: Option<usize>,
}

impl VirtualPath {
    /// Normalises an absolute request path lexically: empty and `.` components are dropped, `..`
    /// pops one. `None` if a `..` climbs above `/`.
    pub(crate) fn normalise(path: &str) -> Option<Normalised> {
        let mut components: Vec<OsString> = Vec::new();
        let mut lowest_after_parent: Option<usize> = None;
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    components.pop()?;
                    lowest_after_parent = Some(
                        lowest_after_parent
                            .map_or(components.len(), |low| low.min(components.len())),
                    );
                }
                name => components.push(OsString::from(name)),
            }
        }
        Some(Normalised {
            path: Self { components },
            lowest_after_parent,
        })
    }

    pub(crate) fn components(&self) -> &[OsString] {
        &self.components
    }

    pub(crate) fn len(&self) -> usize {
        self.components.len()
    }

    pub(crate) fn starts_with(&self, prefix: &Self) -> bool {
        self.components.starts_with(&prefix.components)
    }

    /// This path with one more component.
    pub(crate) fn child(&self, name: &OsStr) -> Self {
        let mut components = self.components.clone();
        components.push(name.to_owned());
        Self { components }
    }

    /// The last component (`None` for `/`).
    pub(crate) fn file_name(&self) -> Option<&OsStr> {
        self.components.last().map(OsString::as_os_str)
    }

    /// This path relative to `base` (which it must start with): `.` for `base` itself.
    pub(crate) fn relative_to(&self, base: &Self) -> String {
        let rest = self.components.get(base.len()..).unwrap_or_default();
        if rest.is_empty() {
            ".".to_owned()
        } else {
            join(rest)
        }
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", join(&self.components))
    }
}

/// Components joined with `/`, non-UTF-8 bytes replaced.
pub(crate) fn join(components: &[OsString]) -> String {
    components
        .iter()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::VirtualPath;

    fn normalise(path: &str) -> Option<(String, Option<usize>)> {
        VirtualPath::normalise(path).map(|n| (n.path.to_string(), n.lowest_after_parent))
    }

    #[test]
    fn normalises_dots_and_slashes() {
        assert_eq!(normalise("/"), Some(("/".to_owned(), None)));
        assert_eq!(
            normalise("//var/./log//"),
            Some(("/var/log".to_owned(), None))
        );
        assert_eq!(
            normalise("/var/log/../lib"),
            Some(("/var/lib".to_owned(), Some(1)))
        );
        assert_eq!(
            normalise("/var/../etc/shadow"),
            Some(("/etc/shadow".to_owned(), Some(0)))
        );
        assert_eq!(normalise("/.."), None);
        assert_eq!(normalise("/var/../../etc"), None);
    }

    #[test]
    fn relative_names() {
        let base = VirtualPath::normalise("/var").expect("valid").path;
        let deep = VirtualPath::normalise("/var/log/x").expect("valid").path;
        assert_eq!(deep.relative_to(&base), "log/x");
        assert_eq!(base.relative_to(&base), ".");
    }
}
