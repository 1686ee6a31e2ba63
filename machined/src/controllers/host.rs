//! What the node's kernel and firmware say, as upstream's runtime and hardware resources: read
//! from procfs and sysfs (the roots of machined's [`hostinfo::Host`]) at start and every
//! [`POLL`] after, by one source task (owner [`OWNER`]).
//!
//! - `/proc/modules` → `LoadedKernelModules.runtime.talos.dev` (id: the module);
//! - `/proc/self/mountinfo` → `MountStatuses.runtime.talos.dev` (id: the mount point; of
//!   stacked mounts, the top one);
//! - `/proc/cmdline` → `KernelCmdlines.runtime.talos.dev/cmdline`;
//! - `/proc/sys/kernel/random/boot_id` → `BootIDs.runtime.talos.dev/boot-id`;
//! - SecureBoot's EFI variable (efivarfs, when mounted) or else the firmware's answer the
//!   kernel's EFI stub kept in the x86 boot parameters (`/sys/kernel/boot_params/data`,
//!   `secure_boot` at 0x1ec: enabled means SecureBoot=1 and SetupMode=0, as upstream counts
//!   it), SELinux's `enforce` and the module signature parameter →
//!   `SecurityStates.talos.dev/securitystate`;
//! - `/proc/cpuinfo` → `Processors.hardware.talos.dev` (one per physical package, id `CPU-<n>`;
//!   upstream reads SMBIOS, so names are the kernel's rather than the firmware's);
//! - `/sys/class/dmi/id` → `SystemInformations.hardware.talos.dev/systeminformation`
//!   (none where the firmware has no DMI);
//! - `/sys/bus/pci/devices` → `PCIDevices.hardware.talos.dev` (id: the PCI address; class
//!   names from the PCI class codes, vendor and product names left out: no ID database).
//!
//! Unreadable files (no permission in dev mode, absent on the platform) leave their resources
//! out; nothing read from the host can stop the task.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use resources::{Kind, Spec, State};
use serde::Serialize;

/// The source's owner name, as upstream's graph shows hardware and runtime status sources.
pub const OWNER: &str = "runtime.HostStatusController";
/// How often the host is read again.
const POLL: Duration = Duration::from_secs(30);

/// `LoadedKernelModules.runtime.talos.dev`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoadedKernelModuleSpec {
    pub size: u64,
    pub reference_count: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    pub state: String,
    pub address: String,
}

impl Spec for LoadedKernelModuleSpec {
    const TYPE: &'static str = "LoadedKernelModules.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `MountStatuses.runtime.talos.dev`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MountStatusSpec {
    pub source: String,
    pub target: String,
    pub filesystem_type: String,
    pub options: Vec<String>,
    pub encrypted: bool,
}

impl Spec for MountStatusSpec {
    const TYPE: &'static str = "MountStatuses.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `KernelCmdlines.runtime.talos.dev`.
#[derive(Debug, Serialize)]
pub struct KernelCmdlineSpec {
    pub cmdline: String,
}

impl Spec for KernelCmdlineSpec {
    const TYPE: &'static str = "KernelCmdlines.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `BootIDs.runtime.talos.dev`.
#[derive(Debug, Serialize)]
pub struct BootIdSpec {
    #[serde(rename = "bootID")]
    pub boot_id: String,
}

impl Spec for BootIdSpec {
    const TYPE: &'static str = "BootIDs.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `SecurityStates.talos.dev`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityStateSpec {
    pub secure_boot: bool,
    #[serde(rename = "selinuxState", skip_serializing_if = "String::is_empty")]
    pub selinux_state: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub module_signature_enforced: bool,
}

impl Spec for SecurityStateSpec {
    const TYPE: &'static str = "SecurityStates.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `Processors.hardware.talos.dev`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub socket: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub manufacturer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product_name: String,
    #[serde(rename = "maxSpeedMhz", skip_serializing_if = "is_zero")]
    pub max_speed: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub core_count: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub thread_count: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl Spec for ProcessorSpec {
    const TYPE: &'static str = "Processors.hardware.talos.dev";
    const NAMESPACE: &'static str = "hardware";
}

/// `SystemInformations.hardware.talos.dev`.
#[derive(Debug, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SystemInformationSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub manufacturer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bios_version: String,
    #[serde(rename = "serialnumber", skip_serializing_if = "String::is_empty")]
    pub serial_number: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sku_number: String,
}

impl Spec for SystemInformationSpec {
    const TYPE: &'static str = "SystemInformations.hardware.talos.dev";
    const NAMESPACE: &'static str = "hardware";
}

/// `PCIDevices.hardware.talos.dev`.
#[derive(Debug, Serialize, PartialEq)]
pub struct PciDeviceSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub class: String,
    pub class_id: String,
    pub subclass_id: String,
    pub vendor_id: String,
    pub product_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub driver: String,
}

impl Spec for PciDeviceSpec {
    const TYPE: &'static str = "PCIDevices.hardware.talos.dev";
    const NAMESPACE: &'static str = "hardware";
}

/// Reads the host under `host`'s roots now and every [`POLL`] after.
pub async fn run(host: hostinfo::Host, state: Arc<State>) {
    loop {
        publish(&host, &state);
        tokio::time::sleep(POLL).await;
    }
}

/// Writes every kind read from the host and removes what went away.
pub fn publish(host: &hostinfo::Host, state: &State) {
    let proc = host.proc_root();
    let sys = host.sys_root();
    let read = |path: &Path| std::fs::read_to_string(path).ok();
    let modules = read(&proc.join("modules"))
        .map(|text| parse_modules(&text))
        .unwrap_or_default();
    replace(state, modules);
    let mounts = read(&proc.join("self/mountinfo"))
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default();
    replace(state, mounts);
    let cmdline = read(&proc.join("cmdline")).map(|text| {
        vec![(
            "cmdline".to_string(),
            KernelCmdlineSpec {
                cmdline: text.trim().to_string(),
            },
        )]
    });
    replace(state, cmdline.unwrap_or_default());
    let boot_id = read(&proc.join("sys/kernel/random/boot_id")).map(|text| {
        vec![(
            "boot-id".to_string(),
            BootIdSpec {
                boot_id: text.trim().to_string(),
            },
        )]
    });
    replace(state, boot_id.unwrap_or_default());
    replace(
        state,
        vec![("securitystate".to_string(), security_state(sys))],
    );
    let processors = read(&proc.join("cpuinfo"))
        .map(|text| parse_cpuinfo(&text))
        .unwrap_or_default();
    replace(state, processors);
    replace(
        state,
        system_information(&sys.join("class/dmi/id"))
            .map(|spec| vec![("systeminformation".to_string(), spec)])
            .unwrap_or_default(),
    );
    replace(state, pci_devices(&sys.join("bus/pci/devices")));
}

/// Writes `items` as the only resources of their kind from this source.
fn replace<S: Spec>(state: &State, items: Vec<(String, S)>) {
    replace_owned(state, OWNER, items);
}

/// Writes `items` as `owner` and removes the resources of their type `owner` wrote before that
/// are not among them.
pub fn replace_owned<S: Spec>(state: &State, owner: &'static str, items: Vec<(String, S)>) {
    for (id, spec) in &items {
        if let Err(error) = state.write_spec(owner, id, spec) {
            tracing::warn!(%error, "cannot publish {} {id}", S::TYPE);
        }
    }
    let kind = Kind::of::<S>();
    for resource in state.list(&kind) {
        let id = &resource.metadata.id;
        if resource.metadata.owner == owner && !items.iter().any(|(kept, _)| kept == id) {
            let _ = state.destroy(owner, &kind, id);
        }
    }
}

/// `/proc/modules`: `name size refcount deps state address`.
pub fn parse_modules(text: &str) -> Vec<(String, LoadedKernelModuleSpec)> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, size, count, deps, state, address, ..] = fields.as_slice() else {
                return None;
            };
            let dependencies = deps
                .split(',')
                .filter(|d| !d.is_empty() && *d != "-")
                .map(str::to_string)
                .collect();
            Some((
                (*name).to_string(),
                LoadedKernelModuleSpec {
                    size: size.parse().ok()?,
                    reference_count: count.parse().unwrap_or(-1),
                    dependencies,
                    state: (*state).to_string(),
                    address: (*address).to_string(),
                },
            ))
        })
        .collect()
}

/// `mountinfo`: `id parent major:minor root target options [optional…] - type source super`.
/// A mount point mounted over twice is listed once, with the top mount.
pub fn parse_mountinfo(text: &str) -> Vec<(String, MountStatusSpec)> {
    let mut mounts: BTreeMap<String, MountStatusSpec> = BTreeMap::new();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let before: Vec<&str> = before.split(' ').collect();
        let after: Vec<&str> = after.split(' ').collect();
        let (Some(target), Some(options), Some(fs_type), Some(source)) =
            (before.get(4), before.get(5), after.first(), after.get(1))
        else {
            continue;
        };
        let target = unescape(target);
        mounts.insert(
            target.clone(),
            MountStatusSpec {
                source: unescape(source),
                target,
                filesystem_type: (*fs_type).to_string(),
                options: options.split(',').map(str::to_string).collect(),
                encrypted: false,
            },
        );
    }
    mounts.into_iter().collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], escaped) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Secure Boot (the SecureBoot EFI variable's value byte after its 4 attribute bytes, else the
/// boot parameters' `secure_boot`), SELinux's mode and whether the kernel refuses unsigned
/// modules.
pub fn security_state(sys: &Path) -> SecurityStateSpec {
    const SECURE_BOOT: &str =
        "firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
    /// `struct boot_params.secure_boot` (Documentation/arch/x86/zero-page.rst).
    const BOOT_PARAMS_SECURE_BOOT: usize = 0x1ec;
    /// `efi_secureboot_mode_enabled`.
    const SECURE_BOOT_ENABLED: u8 = 3;
    let secure_boot = match std::fs::read(sys.join(SECURE_BOOT)) {
        Ok(bytes) => bytes.get(4).copied() == Some(1),
        Err(_) => {
            std::fs::read(sys.join("kernel/boot_params/data"))
                .ok()
                .and_then(|bytes| bytes.get(BOOT_PARAMS_SECURE_BOOT).copied())
                == Some(SECURE_BOOT_ENABLED)
        }
    };
    let selinux_state = match std::fs::read_to_string(sys.join("fs/selinux/enforce")) {
        Ok(value) if value.trim() == "1" => "enforcing",
        Ok(_) => "permissive",
        Err(_) => "disabled",
    };
    let module_signature_enforced =
        std::fs::read_to_string(sys.join("module/module/parameters/sig_enforce"))
            .is_ok_and(|value| value.trim() == "Y");
    SecurityStateSpec {
        secure_boot,
        selinux_state: selinux_state.to_string(),
        module_signature_enforced,
    }
}

/// One processor per `physical id` of `/proc/cpuinfo`.
pub fn parse_cpuinfo(text: &str) -> Vec<(String, ProcessorSpec)> {
    let mut packages: BTreeMap<u32, ProcessorSpec> = BTreeMap::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let fields: BTreeMap<&str, &str> = block
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim(), value.trim()))
            .collect();
        if !fields.contains_key("processor") {
            continue;
        }
        let number = |key: &str| fields.get(key).and_then(|v| v.parse::<f64>().ok());
        let package = number("physical id").unwrap_or(0.0) as u32;
        let logical = packages.entry(package).or_insert_with(|| ProcessorSpec {
            socket: format!("CPU {package}"),
            manufacturer: fields.get("vendor_id").unwrap_or(&"").to_string(),
            product_name: fields
                .get("model name")
                .or_else(|| fields.get("Model"))
                .unwrap_or(&"")
                .to_string(),
            max_speed: number("cpu MHz").unwrap_or(0.0) as u32,
            core_count: number("cpu cores").unwrap_or(0.0) as u32,
            thread_count: number("siblings").unwrap_or(0.0) as u32,
        });
        if !fields.contains_key("siblings") {
            // Kernels that do not report siblings (arm64): count the logical CPUs seen.
            logical.thread_count += 1;
        }
    }
    packages
        .into_iter()
        .map(|(package, spec)| (format!("CPU-{package}"), spec))
        .collect()
}

/// `/sys/class/dmi/id`'s fields (those readable: serial numbers and UUIDs are root's).
pub fn system_information(dmi: &Path) -> Option<SystemInformationSpec> {
    let field = |name: &str| {
        std::fs::read_to_string(dmi.join(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let spec = SystemInformationSpec {
        manufacturer: field("sys_vendor"),
        product_name: field("product_name"),
        version: field("product_version"),
        bios_version: field("bios_version"),
        serial_number: field("product_serial"),
        uuid: field("product_uuid"),
        sku_number: field("product_sku"),
    };
    (spec != SystemInformationSpec::default()).then_some(spec)
}

/// Every device under `devices` (`/sys/bus/pci/devices/<address>`).
pub fn pci_devices(devices: &Path) -> Vec<(String, PciDeviceSpec)> {
    let Ok(entries) = std::fs::read_dir(devices) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PciDeviceSpec)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let dir = entry.path();
            let hex = |name: &str| {
                let text = std::fs::read_to_string(dir.join(name)).ok()?;
                Some(text.trim().trim_start_matches("0x").to_string())
            };
            let class = hex("class")?;
            let class_id = class.get(0..2)?.to_string();
            let subclass_id = class.get(2..4)?.to_string();
            let driver = std::fs::read_link(dir.join("driver"))
                .ok()
                .and_then(|link| Some(link.file_name()?.to_string_lossy().into_owned()))
                .unwrap_or_default();
            let spec = PciDeviceSpec {
                class: class_name(&class_id).to_string(),
                class_id: format!("0x{class_id}"),
                subclass_id: format!("0x{subclass_id}"),
                vendor_id: format!("0x{}", hex("vendor")?),
                product_id: format!("0x{}", hex("device")?),
                driver,
            };
            Some((entry.file_name().to_string_lossy().into_owned(), spec))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The PCI base class names (PCI Code and ID Assignment specification).
fn class_name(class_id: &str) -> &'static str {
    match class_id {
        "00" => "Unclassified device",
        "01" => "Mass storage controller",
        "02" => "Network controller",
        "03" => "Display controller",
        "04" => "Multimedia controller",
        "05" => "Memory controller",
        "06" => "Bridge",
        "07" => "Communication controller",
        "08" => "Generic system peripheral",
        "09" => "Input device controller",
        "0a" => "Docking station",
        "0b" => "Processor",
        "0c" => "Serial bus controller",
        "0d" => "Wireless controller",
        "0e" => "Intelligent controller",
        "0f" => "Satellite communications controller",
        "10" => "Encryption controller",
        "11" => "Signal processing controller",
        "12" => "Processing accelerators",
        "13" => "Non-Essential Instrumentation",
        "40" => "Coprocessor",
        "ff" => "Unassigned class",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn modules_are_read_with_their_dependencies() {
        let text = "nf_nat 61440 2 xt_MASQUERADE,nft_chain_nat, Live 0xffffffffc0a1c000\n\
                    virtio_net 69632 0 - Live 0x0000000000000000\ngarbage line\n";
        let modules = parse_modules(text);
        assert_eq!(modules.len(), 2);
        assert_eq!(modules[0].0, "nf_nat");
        assert_eq!(
            modules[0].1.dependencies,
            ["xt_MASQUERADE", "nft_chain_nat"]
        );
        assert_eq!(modules[0].1.reference_count, 2);
        let yaml = serde_norway::to_string(&modules[1].1).unwrap();
        assert_eq!(
            yaml,
            "size: 69632\nreferenceCount: 0\nstate: Live\naddress: '0x0000000000000000'\n"
        );
    }

    #[test]
    fn mounts_keep_the_top_mount_of_a_point() {
        let text = "22 1 0:21 / /proc rw,nosuid,nodev - proc proc rw\n\
                    30 1 0:25 / /var rw,relatime - tmpfs tmpfs rw\n\
                    31 30 8:3 / /var rw,relatime shared:1 - ext4 /dev/sda3 rw\n\
                    32 1 0:26 / /mnt/a\\040b ro - tmpfs none ro\nbroken\n";
        let mounts = parse_mountinfo(text);
        let ids: Vec<&str> = mounts.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["/mnt/a b", "/proc", "/var"]);
        let var = &mounts[2].1;
        assert_eq!(
            (var.source.as_str(), var.filesystem_type.as_str()),
            ("/dev/sda3", "ext4")
        );
        assert_eq!(var.options, ["rw", "relatime"]);
    }

    #[test]
    fn processors_are_grouped_by_package() {
        let cpu = |n: u32, package: u32| {
            format!(
                "processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\n\
                 physical id\t: {package}\nsiblings\t: 4\ncpu cores\t: 2\ncpu MHz\t\t: 2400.123\n"
            )
        };
        let text = [cpu(0, 0), cpu(1, 0), cpu(2, 1), cpu(3, 1)].join("\n");
        let processors = parse_cpuinfo(&text);
        assert_eq!(processors.len(), 2);
        assert_eq!(processors[1].0, "CPU-1");
        assert_eq!(
            serde_norway::to_string(&processors[0].1).unwrap(),
            "socket: CPU 0\nmanufacturer: GenuineIntel\nproductName: Xeon\nmaxSpeedMhz: 2400\n\
             coreCount: 2\nthreadCount: 4\n"
        );
        // arm64 prints no package or siblings: count the CPUs.
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n";
        assert_eq!(parse_cpuinfo(arm)[0].1.thread_count, 2);
    }

    #[test]
    fn sysfs_gives_system_information_pci_devices_and_security_state() {
        let sys = tempfile::tempdir().unwrap();
        let dmi = sys.path().join("class/dmi/id");
        std::fs::create_dir_all(&dmi).unwrap();
        assert_eq!(system_information(&dmi), None, "no DMI, no resource");
        std::fs::write(dmi.join("sys_vendor"), "QEMU\n").unwrap();
        std::fs::write(dmi.join("product_name"), "Standard PC (Q35 + ICH9, 2009)\n").unwrap();
        let info = system_information(&dmi).unwrap();
        assert_eq!(
            serde_norway::to_string(&info).unwrap(),
            "manufacturer: QEMU\nproductName: Standard PC (Q35 + ICH9, 2009)\n"
        );

        let devices = sys.path().join("bus/pci/devices");
        let nvme = devices.join("0000:00:04.0");
        std::fs::create_dir_all(&nvme).unwrap();
        std::fs::write(nvme.join("class"), "0x010802\n").unwrap();
        std::fs::write(nvme.join("vendor"), "0x1b36\n").unwrap();
        std::fs::write(nvme.join("device"), "0x0010\n").unwrap();
        std::os::unix::fs::symlink("../../../bus/pci/drivers/nvme", nvme.join("driver")).unwrap();
        std::fs::create_dir_all(devices.join("0000:00:05.0")).unwrap(); // no class: skipped
        let found = pci_devices(&devices);
        assert_eq!(found.len(), 1);
        assert_eq!(
            serde_norway::to_string(&found[0].1).unwrap(),
            "class: Mass storage controller\nclass_id: '0x01'\nsubclass_id: '0x08'\n\
             vendor_id: '0x1b36'\nproduct_id: '0x0010'\ndriver: nvme\n"
        );

        let boot_params = sys.path().join("kernel/boot_params");
        std::fs::create_dir_all(&boot_params).unwrap();
        let mut zero_page = vec![0u8; 4096];
        zero_page[0x1ec] = 2; // efi_secureboot_mode_disabled
        std::fs::write(boot_params.join("data"), &zero_page).unwrap();
        assert!(!security_state(sys.path()).secure_boot);
        zero_page[0x1ec] = 3; // efi_secureboot_mode_enabled
        std::fs::write(boot_params.join("data"), &zero_page).unwrap();
        assert!(security_state(sys.path()).secure_boot);
        std::fs::write(boot_params.join("data"), [3u8; 16]).unwrap(); // short: not enabled
        assert!(!security_state(sys.path()).secure_boot);

        let efivars = sys.path().join("firmware/efi/efivars");
        std::fs::create_dir_all(&efivars).unwrap();
        std::fs::write(
            efivars.join("SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"),
            [6, 0, 0, 0, 0],
        )
        .unwrap();
        std::fs::write(boot_params.join("data"), &zero_page).unwrap();
        assert!(
            !security_state(sys.path()).secure_boot,
            "the variable decides when readable"
        );
        std::fs::write(
            efivars.join("SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"),
            [6, 0, 0, 0, 1],
        )
        .unwrap();
        let state = security_state(sys.path());
        assert!(state.secure_boot);
        assert_eq!(state.selinux_state, "disabled");
    }

    #[test]
    fn a_publish_writes_the_host_and_drops_what_went_away() {
        let proc = tempfile::tempdir().unwrap();
        let sys = tempfile::tempdir().unwrap();
        std::fs::write(
            proc.path().join("cmdline"),
            "console=ttyS0 talos.platform=metal\n",
        )
        .unwrap();
        std::fs::write(
            proc.path().join("modules"),
            "a 1 0 - Live 0x0\nb 1 0 - Live 0x0\n",
        )
        .unwrap();
        let host = hostinfo::Host::new(proc.path(), sys.path());
        let state = State::new();
        publish(&host, &state);
        let cmdline = state
            .get(&Kind::of::<KernelCmdlineSpec>(), "cmdline")
            .unwrap();
        assert_eq!(
            cmdline.yaml_spec,
            "cmdline: console=ttyS0 talos.platform=metal\n"
        );
        assert_eq!(state.list(&Kind::of::<LoadedKernelModuleSpec>()).len(), 2);

        std::fs::write(proc.path().join("modules"), "b 1 0 - Live 0x0\n").unwrap();
        publish(&host, &state);
        let modules = state.list(&Kind::of::<LoadedKernelModuleSpec>());
        assert_eq!(modules.len(), 1);
        assert_eq!(modules[0].metadata.id, "b");
        assert_eq!(modules[0].metadata.version, 1, "unchanged, not rewritten");
    }
}
