//! Config patches (`--config-patch`, `patch machineconfig`): parsed and applied to a real
//! generated config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machineconfig::patch::Patch;

const CONFIG: &str = include_str!("../../machinery/machineconfig/tests/fixtures/controlplane.yaml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(patch) = Patch::parse(text) else {
        return;
    };
    let _ = machineconfig::patch::apply_patches(CONFIG, std::slice::from_ref(&patch));
});
