//! Property: a config written back with `to_yaml` decodes to the same config, whatever text its
//! free-form fields hold (YAML's special scalars, quotes, colons, newlines, unicode).

use machineconfig::Config;
use proptest::prelude::*;

const CONTROL_PLANE: &str = include_str!("fixtures/controlplane.yaml");

/// Text that YAML might read as something else if written carelessly.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("yes".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("0x1F".to_string()),
        Just("1e3".to_string()),
        Just("- item".to_string()),
        Just("key: value".to_string()),
        Just("&anchor".to_string()),
        Just("*alias".to_string()),
        Just("!tag".to_string()),
        Just("'quoted'".to_string()),
        Just("line 1\nline 2".to_string()),
        Just("".to_string()),
        "\\PC{0,24}",
        "[ -~]{0,24}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn free_text_fields_round_trip(
        hostname in tricky_text(),
        san in tricky_text(),
        env_key in "[A-Z_]{1,8}",
        env_value in tricky_text(),
        label in tricky_text(),
    ) {
        let mut config = Config::from_yaml(CONTROL_PLANE).expect("fixture decodes");
        let machine = config
            .v1alpha1
            .as_mut()
            .and_then(|v| v.machine.as_mut())
            .expect("fixture has a machine section");
        machine.cert_sans.push(san);
        machine.env.insert(env_key, env_value);
        machine.node_labels.insert("example.com/label".into(), label);
        machine.network.get_or_insert_with(Default::default).hostname = Some(hostname);
        let written = config.to_yaml().expect("encodes");
        let again = Config::from_yaml(&written)
            .unwrap_or_else(|e| panic!("written config does not decode: {e}\n{written}"));
        prop_assert_eq!(again, config);
    }
}
