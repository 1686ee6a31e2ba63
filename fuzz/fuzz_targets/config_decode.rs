//! A machine config from anyone (maintenance-mode apply-config, user data, a downloaded
//! `talos.config=`): decode and validate for every mode; a config that is valid writes back to
//! text that decodes to the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use machineconfig::{Config, RuntimeMode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_yaml(text) else {
        return;
    };
    let mut valid = false;
    for mode in [RuntimeMode::Metal, RuntimeMode::Cloud, RuntimeMode::Container] {
        valid |= config.validate(mode, false).is_ok();
    }
    if valid && let Ok(written) = config.to_yaml() {
        let again = Config::from_yaml(&written)
            .unwrap_or_else(|e| panic!("written config does not decode: {e}\n{written}"));
        assert_eq!(again, config, "round trip changed the config\n{written}");
    }
});
