//! Where the talosconfig lives when `--talosconfig` is not given.

use std::path::PathBuf;

/// In-pod location of a talosconfig mounted by Kubernetes (Talos API access from pods).
const IN_POD_PATH: &str = "/var/run/secrets/talos.dev/config";

/// The talosconfig path in upstream's order: `$TALOSCONFIG`; `$TALOS_HOME/config` or
/// `~/.talos/config`; and, when that does not exist but the in-pod file does, the in-pod file.
pub fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TALOSCONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home_path = match std::env::var_os("TALOS_HOME").filter(|p| !p.is_empty()) {
        Some(talos_home) => PathBuf::from(talos_home).join("config"),
        None => {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".talos").join("config")
        }
    };
    if !home_path.exists() && std::path::Path::new(IN_POD_PATH).exists() {
        return PathBuf::from(IN_POD_PATH);
    }
    home_path
}
