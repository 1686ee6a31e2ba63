//! CEL selectors from machine configs (`UnattendedInstallConfig`, volume selectors): parsed,
//! then evaluated against a disk, as machined evaluates them.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expression) = cel::Expression::parse(text) else {
        return;
    };
    let disk: BTreeMap<String, cel::Value> = [
        ("dev_path", cel::Value::String("/dev/vda".into())),
        ("size", cel::Value::Uint(8 << 30)),
        ("rotational", cel::Value::Bool(false)),
        (
            "symlinks",
            cel::Value::List(vec![cel::Value::String("/dev/disk/by-id/x".into()); 4]),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    let mut variables = cel::size_units();
    variables.insert("disk".into(), cel::Value::Object(disk));
    variables.insert("system_disk".into(), cel::Value::Bool(false));
    let _ = expression.evaluate(&variables);
});
