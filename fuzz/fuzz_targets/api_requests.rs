//! Machine API requests that carry free-form data: decoded as tonic decodes them, then the
//! paths of Read, List and DiskUsage resolved against the node's roots (a small tree made once),
//! where confinement must hold whatever the path says.
#![no_main]

use std::sync::OnceLock;

use filebrowse::Roots;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::machine::{
    ApplyConfigurationRequest, DiskUsageRequest, ListRequest, LogsRequest, ReadRequest,
};

/// Whether a reported name stays inside what the roots show: the virtual root, or the mount.
fn confined(name: &str) -> bool {
    name.is_empty() || name == "/" || name == "/var" || name.starts_with("/var/")
}

fn roots() -> &'static Roots {
    static ROOTS: OnceLock<(std::path::PathBuf, Roots)> = OnceLock::new();
    &ROOTS
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("talos-rs-fuzz-{}", std::process::id()));
            let var = dir.join("var");
            std::fs::create_dir_all(var.join("log/deep")).expect("fixture tree");
            std::fs::write(var.join("log/a.log"), "a").expect("fixture file");
            let _ = std::os::unix::fs::symlink("/etc", var.join("log/escape"));
            let roots = Roots::new([("/var", var)]).expect("roots");
            (dir, roots)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Ok(request) = ReadRequest::decode(body)
                && let Ok(reader) = roots().read(&request.path)
            {
                assert!(confined(reader.virtual_path()), "{}", reader.virtual_path());
            }
        }
        1 => {
            if let Ok(request) = ListRequest::decode(body)
                && let Ok(entries) = roots().list(&request)
            {
                for entry in entries.take(64) {
                    assert!(confined(&entry.name), "{entry:?}");
                }
            }
        }
        2 => {
            if let Ok(request) = DiskUsageRequest::decode(body)
                && let Ok(entries) = roots().disk_usage(&request)
            {
                for entry in entries.take(64) {
                    assert!(confined(&entry.name), "{entry:?}");
                }
            }
        }
        3 => {
            let _ = LogsRequest::decode(body);
        }
        _ => {
            if let Ok(request) = ApplyConfigurationRequest::decode(body)
                && let Ok(text) = std::str::from_utf8(&request.data)
            {
                let _ = machineconfig::Config::from_yaml(text);
            }
        }
    }
});
