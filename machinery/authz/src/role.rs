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

/// The known roles of one caller. A role string grants its role only when it is exactly a
/// role's name: anything else (`x,os:admin`, ` os:admin`, `OS:ADMIN`, `team:x`) grants nothing
/// and is neither kept nor forwarded. apid and machined both read roles with [`RoleSet::parse`],
/// so they never disagree on what a string grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleSet {
    known: u8,
}

impl RoleSet {
    /// No roles at all.
    pub fn new() -> Self {
        RoleSet::default()
    }

    /// Reads role strings, from certificate Subject Organizations or from the values of the
    /// `talos-role` metadata (one role per value, never a list): each string that is exactly a
    /// known role's name grants that role; other strings are refused (they grant nothing).
    pub fn parse<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        values
            .into_iter()
            .filter_map(|value| Role::from_name(value.as_ref()))
            .collect()
    }

    /// Adds a known role.
    pub fn insert(&mut self, role: Role) {
        self.known |= role.bit();
    }

    /// Whether the set holds this known role.
    pub fn contains(&self, role: Role) -> bool {
        self.known & role.bit() != 0
    }

    /// Whether the set holds no role at all.
    pub fn is_empty(&self) -> bool {
        self.known == 0
    }

    /// The roles of the set, in [`Role::ALL`] order. This is what apid forwards as `talos-role`.
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        Role::ALL.into_iter().filter(|role| self.contains(*role))
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
    fn only_exact_role_names_grant_roles() {
        let roles = RoleSet::parse([
            "os:reader",
            "",
            " os:operator ",
            "x,os:admin",
            "OS:ADMIN",
            "team:x",
            "os:reader",
        ]);
        assert_eq!(roles.roles().collect::<Vec<_>>(), [Role::Reader]);
    }

    #[test]
    fn no_known_role_is_an_empty_set() {
        let roles = RoleSet::parse(["", "  ", "os:superuser"]);
        assert!(roles.is_empty());
        assert_eq!(roles.roles().count(), 0);
    }
}
