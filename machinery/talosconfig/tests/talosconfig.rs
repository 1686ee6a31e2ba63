//! The talosconfig file against upstream's format.

use std::path::Path;

use talosconfig::{Context, Talosconfig, TalosconfigError};

const UPSTREAM_SHAPE: &str = "\
context: mycluster
contexts:
  mycluster:
    endpoints:
    - 10.5.0.2
    nodes:
    - 10.5.0.2
    - 10.5.0.3
    ca: Q0E=
    crt: Q1JU
    key: S0VZ
  old:
    target: 192.168.1.1
";

#[test]
fn parses_upstream_format_and_migrates_target() {
    let config = Talosconfig::parse(UPSTREAM_SHAPE, Path::new("t")).unwrap();
    assert_eq!(config.context, "mycluster");
    let (name, current) = config.context(None).unwrap();
    assert_eq!(name, "mycluster");
    assert_eq!(current.endpoints, ["10.5.0.2"]);
    assert_eq!(current.nodes, ["10.5.0.2", "10.5.0.3"]);
    let creds = current.credentials(name).unwrap();
    assert_eq!(
        (
            creds.ca_pem.as_str(),
            creds.crt_pem.as_str(),
            creds.key_pem.as_str()
        ),
        ("CA", "CRT", "KEY")
    );
    let (_, old) = config.context(Some("old")).unwrap();
    assert_eq!(old.endpoints, ["192.168.1.1"]);
    assert!(matches!(
        old.credentials("old"),
        Err(TalosconfigError::MissingCredential { field: "ca", .. })
    ));
}

#[test]
fn unknown_keys_are_ignored_as_upstream_ignores_them() {
    let yaml = "context: a\nfuture-top: 1\ncontexts:\n  a:\n    endpoints: [10.5.0.2]\n    \
                newField: {deep: [x]}\n";
    let config = Talosconfig::parse(yaml, Path::new("/x/cfg")).unwrap();
    let (name, context) = config.context(None).unwrap();
    assert_eq!(name, "a");
    assert_eq!(context.endpoints, ["10.5.0.2"]);
    assert!(
        !config.to_yaml().contains("newField"),
        "{}",
        config.to_yaml()
    );
}

#[test]
fn malformed_files_are_rejected_with_the_file_name() {
    let err =
        Talosconfig::parse("contexts:\n  a:\n    endpoints: 7\n", Path::new("/x/cfg")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("/x/cfg") && text.contains("endpoints"),
        "{text}"
    );
}

#[test]
fn always_writes_endpoints_and_round_trips() {
    let mut config = Talosconfig::default();
    config
        .add("c", Context::new(vec![], "CA", "CRT", "KEY"))
        .unwrap();
    config.use_context("c").unwrap();
    let yaml = config.to_yaml();
    assert!(yaml.contains("endpoints: []"), "{yaml}");
    assert_eq!(Talosconfig::parse(&yaml, Path::new("t")).unwrap(), config);
}

#[test]
fn merge_renames_clashing_contexts_and_switches_to_the_merged_one() {
    let mut mine = Talosconfig::parse(UPSTREAM_SHAPE, Path::new("t")).unwrap();
    let mut theirs = Talosconfig::default();
    theirs.add("mycluster", Context::default()).unwrap();
    theirs.add("fresh", Context::default()).unwrap();
    theirs.use_context("mycluster").unwrap();
    let renamed = mine.merge(theirs.clone());
    assert_eq!(
        renamed,
        [("mycluster".to_string(), "mycluster-1".to_string())]
    );
    assert_eq!(mine.context, "mycluster-1");
    assert!(mine.contexts.contains_key("fresh"));
    mine.merge(theirs);
    assert!(mine.contexts.contains_key("mycluster-2"));
}

#[test]
fn edits_check_names() {
    let mut config = Talosconfig::parse(UPSTREAM_SHAPE, Path::new("t")).unwrap();
    assert!(matches!(
        config.use_context("nope"),
        Err(TalosconfigError::UnknownContext(_))
    ));
    assert!(matches!(
        config.add("old", Context::default()),
        Err(TalosconfigError::ContextExists(_))
    ));
    assert!(matches!(
        config.remove("mycluster"),
        Err(TalosconfigError::RemoveCurrent(_))
    ));
    config.remove("old").unwrap();
    assert!(matches!(
        config.remove("old"),
        Err(TalosconfigError::UnknownContext(_))
    ));
    assert!(matches!(
        Talosconfig::default().context(None),
        Err(TalosconfigError::NoCurrentContext)
    ));
}

#[test]
fn save_is_private_and_respects_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("talosconfig");
    let config = Talosconfig::parse(UPSTREAM_SHAPE, Path::new("t")).unwrap();
    config.save(&path, atomicfile::Overwrite::Refuse).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(config.save(&path, atomicfile::Overwrite::Refuse).is_err());
    assert_eq!(Talosconfig::load(&path).unwrap(), config);
    assert_eq!(
        Talosconfig::load_or_empty(&dir.path().join("none")).unwrap(),
        Talosconfig::default()
    );
}

#[test]
fn other_credentials_replace_only_the_credentials() {
    let mut context = Context::new(vec!["10.5.0.2".into()], "old ca", "old crt", "old key");
    context.nodes = vec!["10.5.0.3".into()];
    context.cluster = "prod".into();
    let credentials = talosconfig::Credentials {
        ca_pem: "new ca".into(),
        crt_pem: "new crt".into(),
        key_pem: "new key".into(),
    };
    let rotated = context.with_credentials(&credentials);
    assert_eq!(rotated.credentials("test").unwrap(), credentials);
    assert_eq!(rotated.endpoints, context.endpoints);
    assert_eq!(rotated.nodes, context.nodes);
    assert_eq!(rotated.cluster, "prod");
}
