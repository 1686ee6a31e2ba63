//! Kernel modules after the API answers: the rest of the image's module groups, then the lock.
//!
//! The image's modules load in four groups (`kernel/modules-*.txt`): the boot group from the
//! initramfs before the root switch, the disk group when STATE and EPHEMERAL are on a disk,
//! the cidata group when a platform volume is read, and the root filesystem's group (network
//! link kinds, netfilter, wireguard, other filesystems) in the background once apid answers.
//! [`load_rest_and_lock`] loads what is left of them and then writes 1 to
//! `kernel.modules_disabled`: from then on the kernel refuses every module load until the next
//! boot, as Talos promises. A group that fails to load is reported and the lock is set anyway.
//!
//! The config cannot add modules: the modules a persisted config asks for
//! (`machine.kernel.modules`, `KernelModuleConfig`) must be among those the image loads; any
//! that is not loaded once the lock is set is reported on the console, and parameters are not
//! applied (the image's modules load with their defaults).

use std::path::{Path, PathBuf};

use machineconfig::Config;

use super::host::Host;
use super::sequence::load_modules;
use crate::error::MachinedError;

/// The sysctl that refuses every later module load until reboot.
pub const MODULES_DISABLED: &str = "kernel.modules_disabled";
/// Where the kernel lists loaded (and built-in, parameterised) modules.
const SYS_MODULE: &str = "/sys/module";

/// Loads the groups not loaded yet (`groups`, in order), sets [`MODULES_DISABLED`] and reports
/// the modules `config_file` asks for that are not loaded.
pub fn load_rest_and_lock<H: Host>(
    host: &mut H,
    groups: &[&Path],
    config_file: &Path,
) -> Result<(), MachinedError> {
    for group in groups {
        if let Err(error) = load_modules(host, group) {
            host.alert(&format!(
                "machined: modules of {}: {error}; locking module loading anyway",
                group.display()
            ));
        }
    }
    host.set_sysctl(MODULES_DISABLED, "1")?;
    host.log("machined: kernel module loading locked (kernel.modules_disabled=1)");
    for (name, parameters) in requested_modules(host, config_file) {
        let sys_name = name.replace('-', "_");
        if !host.exists(&PathBuf::from(SYS_MODULE).join(&sys_name)) {
            host.alert(&format!(
                "machined: the config asks for kernel module {name}, which the image does not \
                 load; module loading is locked (kernel.modules_disabled=1), so it stays absent"
            ));
        } else if !parameters.is_empty() {
            host.log(&format!(
                "machined: kernel module {name} is loaded with the image's defaults; the \
                 config's parameters ({}) are not applied",
                parameters.join(" ")
            ));
        }
    }
    Ok(())
}

/// The modules (and their parameters) of the persisted config; none when it cannot be read.
fn requested_modules<H: Host>(host: &mut H, config_file: &Path) -> Vec<(String, Vec<String>)> {
    if !host.exists(config_file) {
        return Vec::new();
    }
    let config = match host
        .read_file(config_file)
        .and_then(|text| Config::from_yaml(&text).map_err(MachinedError::from))
    {
        Ok(config) => config,
        Err(error) => {
            host.log(&format!(
                "machined: {}: not checked for kernel modules: {error}",
                config_file.display()
            ));
            return Vec::new();
        }
    };
    let mut modules: Vec<(String, Vec<String>)> = config
        .v1alpha1
        .iter()
        .filter_map(|v| v.machine.as_ref()?.kernel.as_ref())
        .flat_map(|kernel| kernel.modules.iter())
        .map(|module| (module.name.clone(), module.parameters.clone()))
        .collect();
    modules.extend(
        config
            .documents
            .iter()
            .filter_map(|document| match document {
                machineconfig::documents::Document::KernelModule(module) => {
                    Some((module.name.clone(), module.parameters.clone()))
                }
                _ => None,
            }),
    );
    modules
}

#[cfg(test)]
mod tests {
    use super::super::host::{Action, RecordingHost};
    use super::*;

    const CONFIG: &str = "/system/state/config.yaml";

    fn host_with_groups() -> RecordingHost {
        RecordingHost::default()
            .with_file("/lib/modules/disk/load-order", "xfs.ko\n")
            .with_file("/lib/modules/load-order", "bonding.ko\n")
    }

    fn groups() -> [&'static Path; 2] {
        [Path::new("/lib/modules/disk"), Path::new("/lib/modules")]
    }

    #[test]
    fn the_lock_comes_after_every_group() {
        let mut host = host_with_groups();
        load_rest_and_lock(&mut host, &groups(), Path::new(CONFIG)).unwrap();
        assert_eq!(
            host.effects(),
            vec![
                Action::LoadModule("/lib/modules/disk/xfs.ko".into()),
                Action::LoadModule("/lib/modules/bonding.ko".into()),
                Action::Sysctl(MODULES_DISABLED.into(), "1".into()),
            ]
        );
    }

    #[test]
    fn a_group_that_cannot_be_read_is_reported_and_the_lock_still_set() {
        let mut host = RecordingHost::default().with_file("/lib/modules/load-order", "a.ko\n");
        load_rest_and_lock(&mut host, &groups(), Path::new(CONFIG)).unwrap();
        assert!(
            host.actions
                .iter()
                .any(|a| matches!(a, Action::Alert(line) if line.contains("/lib/modules/disk")))
        );
        assert_eq!(
            host.effects().last(),
            Some(&Action::Sysctl(MODULES_DISABLED.into(), "1".into()))
        );
    }

    #[test]
    fn config_modules_absent_from_the_image_are_reported() {
        let config = "version: v1alpha1\nmachine:\n  type: worker\n  kernel:\n    modules:\n      \
                      - name: bonding\n        parameters: [mode=1]\n      - name: btrfs\n\
                      ---\napiVersion: v1alpha1\nkind: KernelModuleConfig\nname: zfs\n";
        let mut host = host_with_groups().with_file(CONFIG, config);
        host.present.push("/sys/module/bonding".into());
        load_rest_and_lock(&mut host, &groups(), Path::new(CONFIG)).unwrap();
        let alerts: Vec<&String> = host
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Alert(line) => Some(line),
                _ => None,
            })
            .collect();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(alerts[0].contains("kernel module btrfs"));
        assert!(alerts[1].contains("kernel module zfs"));
        assert!(
            host.logs()
                .iter()
                .any(|line| line.contains("bonding") && line.contains("mode=1"))
        );
    }
}
