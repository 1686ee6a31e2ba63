//! Role names and sets of roles.

use std::fmt;

/// A role Talos knows (reference §3.1). Role strings outside this list are kept by [`RoleSet`]
/// but grant nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `os:admin`: everything.
    Admin,
    /// `os:operator`: reader plus non-secret management (reboot, service control, ...).
    Operator,
    /// `os:reader`: read-only APIs that expose no secrets.
    Reader,
    /// `os:etcd:backup`: etcd snapshots and etcd read APIs.
    EtcdBackup,
    /// `os:image:verifier`: `ImageService.Verify`.
    ImageVerifier,
    /// `os:meta:writer`: `MetaWrite` and `MetaDelete`.
    MetaWriter,
    /// `os:impersonator`: the `talos-role` metadata replaces the certificate's roles.
    Impersonator,
}

impl Role {
    /// Every known role, in the order [`RoleSet::names`] lists them.
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Operator,
        Role::Reader,
        Role::EtcdBackup,
        Role::ImageVerifier,
        Role::MetaWriter,
        Role::Impersonator,
    ];

    /// The role's string as it appears in certificates and metadata, e.g. `os:admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "os:admin",
            Role::Operator => "os:operator",
            Role::Reader => "os:reader",
            Role::EtcdBackup => "os:etcd:backup",
            Role::ImageVerifier => "os:image:verifier",
            Role::MetaWriter => "os:meta:writer",
            Role::Impersonator => "os:impersonator",
        }
    }

    /// The known role with this exact string, if any.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles of one caller: the known ones plus any unknown strings, which are kept (to be
/// forwarded unchanged) but grant nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleSet {
    known: u8,
    unknown: Vec<String>,
}

impl RoleSet {
    /// No roles at all.
    pub fn new() -> Self {
        RoleSet::default()
    }

    /// Parses role strings, from certificate Subject Organizations or from the values of the
    /// `talos-role` metadata: each is trimmed, empty ones are ignored, duplicates collapse.
    pub fn parse<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut roles = RoleSet::new();
        for value in values {
            roles.insert_name(value.as_ref());
        }
        roles
    }

    /// Adds a known role.
    pub fn insert(&mut self, role: Role) {
        self.known |= role.bit();
    }

    /// Adds a role by name (trimmed; ignored when empty; kept as unknown when not a [`Role`]).
    pub fn insert_name(&mut self, name: &str) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        match Role::from_name(name) {
            Some(role) => self.insert(role),
            None => {
                if !self.unknown.iter().any(|known| known == name) {
                    self.unknown.push(name.to_owned());
                }
            }
        }
    }

    /// Whether the set holds this known role.
    pub fn contains(&self, role: Role) -> bool {
        self.known & role.bit() != 0
    }

    /// Whether the set holds no role strings at all, known or unknown.
    pub fn is_empty(&self) -> bool {
        self.known == 0 && self.unknown.is_empty()
    }

    /// Every role string of the set: the known roles in [`Role::ALL`] order, then the unknown
    /// strings in the order they were first seen. This is what apid forwards as `talos-role`.
    pub fn names<'a>(&'a self) -> impl Iterator<Item = &'a str> {
        Role::ALL
            .into_iter()
            .filter(move |role| self.contains(*role))
            .map(|role| -> &'a str { role.as_str() })
            .chain(self.unknown.iter().map(String::as_str))
    }

    pub(crate) fn known_bits(&self) -> u8 {
        self.known
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(roles: I) -> Self {
        let mut set = RoleSet::new();
        for role in roles {
            set.insert(role);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_strings_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_name("os:root"), None);
        assert_eq!(Role::from_name("OS:ADMIN"), None);
    }

    #[test]
    fn parse_keeps_unknown_ignores_empty_and_duplicates() {
        let roles = RoleSet::parse([
            "os:reader",
            "",
            " os:operator ",
            "team:x",
            "os:reader",
            "team:x",
        ]);
        assert!(roles.contains(Role::Reader));
        assert!(roles.contains(Role::Operator));
        assert!(!roles.contains(Role::Admin));
        assert_eq!(
            roles.names().collect::<Vec<_>>(),
            ["os:operator", "os:reader", "team:x"]
        );
    }

    #[test]
    fn empty_organizations_give_an_empty_set() {
        let roles = RoleSet::parse(["", "  "]);
        assert!(roles.is_empty());
        assert_eq!(roles.names().count(), 0);
    }
}
