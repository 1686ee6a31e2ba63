//! The platform (reference §7.3): `talos.platform=` when given, else `nocloud` when the SMBIOS
//! serial says `ds=nocloud…` or a volume is labelled `cidata`, else `metal`. For nocloud the
//! `user-data` file of the cidata volume becomes the machine config when STATE holds none. For
//! metal, `talos.config=http://…` (or `https://…`, checked against Mozilla's roots) is downloaded (after the network is up, with `${uuid}`,
//! `${serial}`, `${mac}` and `${hostname}` substituted) and becomes the config, retried with
//! back-off for about two minutes before the node waits in maintenance mode instead.
//!
//! aws, azure, gcp, openstack (after its config drive, a volume labelled `config-2`), hcloud,
//! digital-ocean, vultr, upcloud, oracle, exoscale, akamai, alibabacloud, scaleway, cloudstack
//! and equinixMetal ask their metadata service ([`super::cloud`]) at every boot, with the same
//! back-off and a log line per failed try (one try when STATE holds a config): what it says
//! becomes `PlatformMetadatas.talos.dev/platformmetadata` and the hostname (unless
//! `talos.hostname=` names one), its network (addresses, routes, resolvers, DHCP) the
//! `machine.network` networkd applies while the config has none, and its user data the
//! config when STATE holds none. nocloud reads the cidata volume's `meta-data` (instance id,
//! hostname) and `network-config` (versions 1 and 2) the same way, and opennebula the
//! `context.sh` of its volume labelled `CONTEXT` (network, hostname, `VMID`, base64
//! `USER_DATA`). User data that is not a valid machine config is not persisted: the node
//! waits in maintenance mode and reports why (log and config load error event); no user data
//! → maintenance mode. A data volume that does not mount is logged and the node waits the
//! same way (openstack then asks its metadata service). azure without IMDS user data reads
//! the `CustomData` of `ovf-env.xml` on its provisioning media (a UDF or iso9660 volume), and
//! reports ready to the wire server (a failure is only logged).
//!
//! Limits: cidata must be an iso9660 or FAT volume on a block device the kernel already sees
//! (virtio, not an IDE CD-ROM); `nocloud-net` URLs and `#include` user-data are not read; a
//! config's `machine.network` that is not empty replaces the provider's network as a whole;
//! `talos.config=` does not take `metal-iso`, and an https one trusts only the built-in
//! public roots; vmware's guestinfo is not read, and a platform name this release does not
//! know is not guessed at: the log says so and the node waits in maintenance mode.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::MsFlags;

use machineconfig::RuntimeMode;
use serde::Deserialize;

use super::cloud::netconfig::NetworkConfig;
use super::cloud::{self, Provider};
use super::cmdline::Cmdline;
use super::host::{Host, Mount};
use super::sequence::load_modules;
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

/// The persisted config on STATE.
pub const CONFIG: &str = "/system/state/config.yaml";
/// The label of OpenStack's config drive.
const CONFIG_DRIVE_LABEL: &str = "config-2";
/// Where the cidata volume (or a config drive) is mounted while it is read.
const CIDATA_MOUNT: &str = "/run/cidata";
/// Modules for the cidata volume's filesystems (iso9660, vfat), with their `load-order`.
pub const CIDATA_MODULES: &str = "/lib/modules/cidata";

/// The platform's name.
pub fn detect<H: Host>(host: &mut H, cmdline: &Cmdline) -> Result<String, MachinedError> {
    if let Some(name) = cmdline.get("talos.platform") {
        return Ok(name.to_string());
    }
    let serial = host
        .read_file(Path::new("/sys/class/dmi/id/product_serial"))
        .unwrap_or_default();
    if serial.trim().starts_with("ds=nocloud") || find_cidata(host)?.is_some() {
        return Ok("nocloud".into());
    }
    Ok("metal".into())
}

/// What the platform said besides the config.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the provider says about the instance.
    pub metadata: Option<PlatformMetadataSpec>,
    /// The hostname the provider gave, once set.
    pub hostname: Option<String>,
    /// Why the user data did not become the config.
    pub user_data_problem: Option<String>,
    /// The provider's network as `machine.network` YAML, which networkd applies while the
    /// config has no `machine.network`.
    pub network_yaml: Option<String>,
}

/// Asks the platform: nocloud's cidata volume, metal's `talos.config=`, or a cloud provider's
/// metadata service at `base` ([`cloud::METADATA_BASE`] in the image). User data becomes the
/// config on STATE only when STATE holds none.
pub fn fetch_config<H: Host>(
    host: &mut H,
    platform: &str,
    cmdline: &Cmdline,
    hostname: &str,
    base: &str,
) -> Result<Outcome, MachinedError> {
    let configured = host.exists(Path::new(CONFIG));
    let mut outcome = match (platform, cmdline.get("talos.config")) {
        ("nocloud", _) => from_cidata(host, configured)?,
        ("metal", Some(url)) if url != "none" && !configured => {
            let url = expand(host, url, hostname);
            download(host, &url)?;
            Outcome::default()
        }
        ("opennebula", _) => from_context_volume(host, configured)?,
        ("openstack", _) => match from_config_drive(host, configured)? {
            Some(outcome) => outcome,
            None => from_provider(host, Provider::OpenStack, base, configured)?,
        },
        (name, _) => match Provider::from_name(name) {
            Some(provider) => from_provider(host, provider, base, configured)?,
            None => {
                if let Some(note) = unserved(name) {
                    host.log(&format!("machined: {note}"));
                }
                Outcome::default()
            }
        },
    };
    let given = outcome
        .metadata
        .as_ref()
        .map(|m| m.hostname.split('.').next().unwrap_or_default().to_string())
        .filter(|name| !name.is_empty());
    if let Some(name) = given
        && cmdline.get("talos.hostname").is_none()
    {
        match host.set_hostname(&name) {
            Ok(()) => outcome.hostname = Some(name),
            Err(error) => host.log(&format!("machined: {platform}: hostname {name:?}: {error}")),
        }
    }
    Ok(outcome)
}

/// What the log says of a platform whose config this release cannot fetch (`None` for metal
/// and container, which need none).
fn unserved(name: &str) -> Option<String> {
    match name {
        "metal" | super::container::PLATFORM_NAME => None,
        "vmware" => Some(
            "vmware: guestinfo (VMware's backdoor RPC) is not read by this release; waiting in maintenance mode"
                .into(),
        ),
        other => Some(format!(
            "talos.platform={other:?} is not a platform this release knows; waiting in maintenance mode"
        )),
    }
}

/// Asks `provider`'s metadata service, trying again after each pause.
fn from_provider<H: Host>(
    host: &mut H,
    provider: Provider,
    base: &str,
    configured: bool,
) -> Result<Outcome, MachinedError> {
    let name = provider.name();
    let service = provider.service(base);
    let mut answer = None;
    // With a config on STATE the node does not wait for the provider: one try.
    let pauses: &[u64] = if configured { &[] } else { &DOWNLOAD_BACKOFF };
    for pause in pauses
        .iter()
        .map(|s| Some(Duration::from_secs(*s)))
        .chain([None])
    {
        match provider.fetch(base) {
            Ok(mut instance) => {
                if provider == Provider::Azure && instance.user_data.is_none() && !configured {
                    instance.user_data = azure_custom_data(host)?;
                }
                answer = Some(instance);
                break;
            }
            Err(error) => match pause {
                Some(pause) => {
                    host.log(&format!(
                        "machined: {error}; the metadata service at {service} does not answer as expected, trying again in {pause:?}"
                    ));
                    host.sleep(pause);
                }
                None => host.log(&format!(
                    "machined: {error}; giving up on the metadata service at {service}, waiting in maintenance mode"
                )),
            },
        }
    }
    match answer {
        Some(instance) => from_instance(host, name, instance, configured),
        None => Ok(Outcome::default()),
    }
}

/// What an instance's metadata gives: logged, its network for networkd, its user data the
/// config when STATE has none and it is valid.
fn from_instance<H: Host>(
    host: &mut H,
    name: &str,
    instance: cloud::Instance,
    configured: bool,
) -> Result<Outcome, MachinedError> {
    let m = &instance.metadata;
    host.log(&format!(
        "machined: {name}: instance {} ({}) in {} {}, hostname {:?}",
        m.instance_id, m.instance_type, m.region, m.zone, m.hostname
    ));
    host.log(&format!(
        "machined: {name}: network from the provider: {}",
        instance.network
    ));
    for note in &instance.notes {
        host.log(&format!("machined: {note}"));
    }
    let network_yaml = network_yaml(host, name, &instance.network);
    let user_data_problem = match (configured, instance.user_data) {
        (true, _) => None,
        (false, None) => {
            host.log(&format!(
                "machined: {name}: the instance has no user data; waiting in maintenance mode"
            ));
            None
        }
        (false, Some(data)) => accept_user_data(host, name, &data)?,
    };
    Ok(Outcome {
        metadata: Some(instance.metadata),
        hostname: None,
        user_data_problem,
        network_yaml,
    })
}

/// OpenStack's config drive (a volume labelled `config-2`), read as upstream does before the
/// metadata service: `openstack/latest/meta_data.json`, `network_data.json`, `user_data`.
/// Mounts a config drive or cidata volume read-only at [`CIDATA_MOUNT`] (loading the modules
/// its file systems need).
fn mount_data_volume<H: Host>(
    host: &mut H,
    device: &Path,
    fstype: &str,
) -> Result<(), MachinedError> {
    load_modules(host, Path::new(CIDATA_MODULES))?;
    host.create_dir(Path::new(CIDATA_MOUNT))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    host.mount(&Mount::new(
        &device.display().to_string(),
        CIDATA_MOUNT,
        fstype,
        flags,
        "",
    ))
}

/// `None` when there is no such volume or it cannot be read as one.
fn from_config_drive<H: Host>(
    host: &mut H,
    configured: bool,
) -> Result<Option<Outcome>, MachinedError> {
    let Some((device, fstype)) = find_volume(host, CONFIG_DRIVE_LABEL)? else {
        return Ok(None);
    };
    if let Err(error) = mount_data_volume(host, &device, fstype) {
        host.log(&format!(
            "machined: openstack: config drive {}: {error}; asking the metadata service",
            device.display()
        ));
        return Ok(None);
    }
    let latest = Path::new(CIDATA_MOUNT).join("openstack/latest");
    let meta = host.read_file(&latest.join("meta_data.json"));
    let network = host.read_file(&latest.join("network_data.json")).ok();
    let user_data = host.read_file(&latest.join("user_data")).ok();
    host.unmount(Path::new(CIDATA_MOUNT))?;
    let parsed = meta.and_then(|meta| {
        cloud::openstack::parse(
            meta.as_bytes(),
            network.as_deref().map(str::as_bytes),
            None,
            None,
        )
    });
    match parsed {
        Ok(mut instance) => {
            host.log(&format!(
                "machined: openstack: config drive {}",
                device.display()
            ));
            instance.user_data = user_data.map(String::into_bytes);
            from_instance(host, "openstack", instance, configured).map(Some)
        }
        Err(error) => {
            host.log(&format!(
                "machined: openstack: config drive {}: {error}; asking the metadata service",
                device.display()
            ));
            Ok(None)
        }
    }
}

/// OpenNebula's contextualization CD-ROM (a volume labelled `CONTEXT`): its `context.sh`,
/// read once (it is local; nothing to wait for).
fn from_context_volume<H: Host>(host: &mut H, configured: bool) -> Result<Outcome, MachinedError> {
    use cloud::{opennebula, shellvars};
    let Some((device, fstype)) = find_volume(host, opennebula::VOLUME_LABEL)? else {
        host.log("machined: opennebula: no volume labelled CONTEXT; waiting in maintenance mode");
        return Ok(Outcome::default());
    };
    if let Err(error) = mount_data_volume(host, &device, fstype) {
        host.log(&format!(
            "machined: opennebula: {}: {error}; waiting in maintenance mode",
            device.display()
        ));
        return Ok(Outcome::default());
    }
    let path = Path::new(CIDATA_MOUNT).join(opennebula::CONTEXT_FILE);
    let context = host.read_head(&path, shellvars::MAX_FILE + 1);
    host.unmount(Path::new(CIDATA_MOUNT))?;
    match context.and_then(|raw| opennebula::parse(&raw)) {
        Ok(instance) => {
            host.log(&format!(
                "machined: opennebula: {} on {}",
                opennebula::CONTEXT_FILE,
                device.display()
            ));
            from_instance(host, "opennebula", instance, configured)
        }
        Err(error) => {
            host.log(&format!(
                "machined: opennebula: {}: {error}; waiting in maintenance mode",
                device.display()
            ));
            Ok(Outcome::default())
        }
    }
}

/// Azure's provisioning media: the first UDF or iso9660 volume that holds `ovf-env.xml`;
/// the `CustomData` it carries.
fn azure_custom_data<H: Host>(host: &mut H) -> Result<Option<Vec<u8>>, MachinedError> {
    for name in host.list_dir(Path::new("/sys/class/block"))? {
        if name.starts_with("loop") || name.starts_with("ram") {
            continue;
        }
        let device = Path::new("/dev").join(&name);
        let Some(fstype) = host
            .read_head(&device, OPTICAL_HEAD)
            .ok()
            .and_then(|head| optical_filesystem(&head))
        else {
            continue;
        };
        if let Err(error) = mount_data_volume(host, &device, fstype) {
            host.log(&format!("machined: azure: {}: {error}", device.display()));
            continue;
        }
        let ovf_env = host.read_file(&Path::new(CIDATA_MOUNT).join("ovf-env.xml"));
        host.unmount(Path::new(CIDATA_MOUNT))?;
        let Ok(ovf_env) = ovf_env else {
            continue;
        };
        return match cloud::azure::custom_data(ovf_env.as_bytes()) {
            Ok(data) => {
                host.log(&format!(
                    "machined: azure: ovf-env.xml on {} ({})",
                    device.display(),
                    if data.is_some() {
                        "with CustomData"
                    } else {
                        "no CustomData"
                    }
                ));
                Ok(data)
            }
            Err(error) => {
                host.log(&format!("machined: {error}"));
                Ok(None)
            }
        };
    }
    Ok(None)
}

/// Bytes read to recognise an optical volume: its volume recognition sequence.
const OPTICAL_HEAD: usize = 32 * 1024 + 3 * 2048;

/// `udf` or `iso9660` when the first bytes of a volume are of one.
fn optical_filesystem(head: &[u8]) -> Option<&'static str> {
    let descriptor = |n: usize| head.get(32769 + n * 2048..32774 + n * 2048);
    if (0..3).any(|n| matches!(descriptor(n), Some(b"NSR02" | b"NSR03"))) {
        return Some("udf");
    }
    (descriptor(0) == Some(b"CD001")).then_some("iso9660")
}

/// `network` as `machine.network` YAML for networkd (`None` when it says nothing); links
/// given by MAC address are found in sysfs.
fn network_yaml<H: Host>(host: &mut H, platform: &str, network: &NetworkConfig) -> Option<String> {
    if network.is_empty() {
        return None;
    }
    let sysfs = Path::new("/sys/class/net");
    let mut links = BTreeMap::new();
    for name in host.list_dir(sysfs).unwrap_or_default() {
        if let Ok(mac) = host.read_file(&sysfs.join(&name).join("address")) {
            links.insert(mac.trim().to_ascii_lowercase(), name);
        }
    }
    let (machine, missing) = network.machine_network(&links);
    if !missing.is_empty() {
        host.log(&format!(
            "machined: {platform}: no link has MAC {}; its network settings are left out",
            missing.join(", ")
        ));
    }
    match serde_norway::to_string(&machine) {
        Ok(yaml) => Some(yaml),
        Err(error) => {
            host.log(&format!("machined: {platform}: network: {error}"));
            None
        }
    }
}

/// Persists `data` as the config when it is a valid one; otherwise says why not.
fn accept_user_data<H: Host>(
    host: &mut H,
    platform: &str,
    data: &[u8],
) -> Result<Option<String>, MachinedError> {
    let checked = std::str::from_utf8(data)
        .map_err(|_| "the user data is not UTF-8 text".to_string())
        .and_then(|text| {
            if text.trim_start().starts_with("#include") {
                return Err("#include user data is not supported".to_string());
            }
            crate::node_config::check(text, RuntimeMode::Cloud).map_err(|e| e.to_string())
        });
    match checked {
        Ok(()) => {
            host.write_file(Path::new(CONFIG), data, 0o600)?;
            host.log(&format!(
                "machined: {platform}: config taken from the user data"
            ));
            Ok(None)
        }
        Err(problem) => {
            let problem = format!("{platform} user data is not a valid machine config: {problem}");
            host.log(&format!("machined: {problem}; waiting in maintenance mode"));
            Ok(Some(problem))
        }
    }
}

/// Pauses between download attempts: about two minutes in all.
const DOWNLOAD_BACKOFF: [u64; 9] = [1, 2, 4, 8, 15, 15, 15, 30, 30];

/// Downloads the config from `url` to STATE, trying again after each pause.
fn download<H: Host>(host: &mut H, url: &str) -> Result<(), MachinedError> {
    for pause in DOWNLOAD_BACKOFF
        .iter()
        .map(|s| Some(Duration::from_secs(*s)))
        .chain([None])
    {
        match host.download(url) {
            Ok(config) => {
                host.write_file(Path::new(CONFIG), &config, 0o600)?;
                host.log(&format!("machined: metal: config downloaded from {url}"));
                return Ok(());
            }
            Err(problem) => match pause {
                Some(pause) => {
                    host.log(&format!(
                        "machined: metal: talos.config: {problem}; trying again in {pause:?}"
                    ));
                    host.sleep(pause);
                }
                None => host.log(&format!(
                    "machined: metal: talos.config: {problem}; giving up, waiting in maintenance mode"
                )),
            },
        }
    }
    Ok(())
}

/// `url` with upstream's variables replaced by this machine's values.
fn expand<H: Host>(host: &mut H, url: &str, hostname: &str) -> String {
    let mut read = |path: &str| {
        host.read_file(Path::new(path))
            .map(|value| value.trim().to_string())
            .unwrap_or_default()
    };
    let uuid = read("/sys/class/dmi/id/product_uuid");
    let serial = read("/sys/class/dmi/id/product_serial");
    let mac = read("/sys/class/net/eth0/address");
    url.replace("${uuid}", &uuid)
        .replace("${serial}", &serial)
        .replace("${mac}", &mac)
        .replace("${hostname}", hostname)
}

/// nocloud's `meta-data`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct NocloudMeta {
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    local_hostname: String,
}

/// The cidata volume's `meta-data`, `network-config` and (without a persisted config)
/// `user-data`.
fn from_cidata<H: Host>(host: &mut H, configured: bool) -> Result<Outcome, MachinedError> {
    let Some((device, fstype)) = find_cidata(host)? else {
        if !configured {
            host.log("machined: nocloud: no cidata volume; waiting in maintenance mode");
        }
        return Ok(Outcome::default());
    };
    // A volume the kernel cannot read is the platform's problem, not the boot's.
    if let Err(error) = mount_data_volume(host, &device, fstype) {
        host.log(&format!(
            "machined: nocloud: cidata volume {}: {error}{}",
            device.display(),
            if configured {
                ""
            } else {
                "; waiting in maintenance mode"
            }
        ));
        return Ok(Outcome::default());
    }
    let mount = Path::new(CIDATA_MOUNT);
    let meta = host.read_file(&mount.join("meta-data")).ok();
    let network = host.read_file(&mount.join("network-config")).ok();
    let user_data = (!configured).then(|| host.read_file(&mount.join("user-data")));
    host.unmount(mount)?;
    let mut outcome = Outcome::default();
    if let Some(text) = meta {
        match serde_norway::from_str::<Option<NocloudMeta>>(&text) {
            Ok(meta) => {
                let meta = meta.unwrap_or(NocloudMeta {
                    instance_id: String::new(),
                    local_hostname: String::new(),
                });
                outcome.metadata = Some(PlatformMetadataSpec {
                    platform: "nocloud".into(),
                    hostname: meta.local_hostname.trim().chars().take(253).collect(),
                    instance_id: meta.instance_id.trim().chars().take(253).collect(),
                    ..PlatformMetadataSpec::default()
                });
            }
            Err(error) => host.log(&format!("machined: nocloud: meta-data: {error}")),
        }
    }
    if let Some(text) = network {
        match cloud::netconfig::parse("nocloud", text.as_bytes()) {
            Ok(network) => {
                host.log(&format!("machined: nocloud: network-config: {network}"));
                outcome.network_yaml = network_yaml(host, "nocloud", &network);
            }
            Err(error) => host.log(&format!("machined: {error}")),
        }
    }
    match user_data {
        None => {}
        Some(Ok(text)) => {
            outcome.user_data_problem = accept_user_data(host, "nocloud", text.as_bytes())?;
            if outcome.user_data_problem.is_none() {
                host.log(&format!(
                    "machined: nocloud: config taken from {}",
                    device.display()
                ));
            }
        }
        Some(Err(error)) => host.log(&format!("machined: nocloud: {error}")),
    }
    Ok(outcome)
}

/// The first block device whose iso9660 volume id or FAT label is `cidata` (any case).
fn find_cidata<H: Host>(host: &mut H) -> Result<Option<(PathBuf, &'static str)>, MachinedError> {
    find_volume(host, "cidata")
}

/// The first block device whose iso9660 volume id or FAT label is `label` (any case).
fn find_volume<H: Host>(
    host: &mut H,
    label: &str,
) -> Result<Option<(PathBuf, &'static str)>, MachinedError> {
    for name in host.list_dir(Path::new("/sys/class/block"))? {
        if name.starts_with("loop") || name.starts_with("ram") {
            continue;
        }
        let device = Path::new("/dev").join(&name);
        let Ok(head) = host.read_head(&device, 32 * 1024 + 2048) else {
            continue;
        };
        if let Some(fstype) = labelled_filesystem(&head, label) {
            return Ok(Some((device, fstype)));
        }
    }
    Ok(None)
}

/// `iso9660` or `vfat` when the first bytes of a volume name it `label` (any case).
fn labelled_filesystem(head: &[u8], wanted: &str) -> Option<&'static str> {
    let label = |range: std::ops::Range<usize>| {
        head.get(range)
            .map(|b| String::from_utf8_lossy(b).trim().to_ascii_lowercase())
    };
    if head.get(32769..32774) == Some(b"CD001") && label(32808..32840)? == wanted {
        return Some("iso9660");
    }
    let fat32 = head.get(0x52..0x57) == Some(b"FAT32") && label(0x47..0x52)? == wanted;
    let fat16 = head.get(0x36..0x39) == Some(b"FAT") && label(0x2b..0x36)? == wanted;
    (fat32 || fat16).then_some("vfat")
}

#[cfg(test)]
mod tests {
    use super::super::host::{Action, RecordingHost};
    use super::*;

    /// A valid machine config.
    const WORKER: &str =
        include_str!("../../../machinery/machineconfig/tests/fixtures/worker.yaml");
    /// A closed loopback port: no metadata service.
    const NO_SERVICE: &str = "http://127.0.0.1:1";

    fn iso_head(volume: &str) -> Vec<u8> {
        let mut head = vec![0u8; 34 * 1024];
        head[32768] = 1;
        head[32769..32774].copy_from_slice(b"CD001");
        let mut id = volume.as_bytes().to_vec();
        id.resize(32, b' ');
        head[32808..32840].copy_from_slice(&id);
        head
    }

    fn with_cidata() -> RecordingHost {
        let mut host = RecordingHost::default();
        host.present.push("/sys/class/block/vda".into());
        host.present.push("/sys/class/block/vdb".into());
        host.heads.insert("/dev/vda".into(), vec![0; 64]);
        host.heads.insert("/dev/vdb".into(), iso_head("CIDATA"));
        host.files
            .insert("/run/cidata/user-data".into(), WORKER.into());
        host.files.insert(
            "/lib/modules/cidata/load-order".into(),
            "cdrom.ko fat.ko\nisofs.ko vfat.ko\n".into(),
        );
        host
    }

    #[test]
    fn detects_nocloud_by_cidata_volume_or_serial_unless_the_command_line_names_one() {
        let mut host = with_cidata();
        assert_eq!(detect(&mut host, &Cmdline::parse("")).unwrap(), "nocloud");
        assert_eq!(
            detect(&mut host, &Cmdline::parse("talos.platform=metal")).unwrap(),
            "metal"
        );
        let mut bare = RecordingHost::default();
        assert_eq!(detect(&mut bare, &Cmdline::parse("")).unwrap(), "metal");
        let mut serial = RecordingHost::default()
            .with_file("/sys/class/dmi/id/product_serial", "ds=nocloud;h=node-1\n");
        assert_eq!(detect(&mut serial, &Cmdline::parse("")).unwrap(), "nocloud");
    }

    #[test]
    fn nocloud_user_data_becomes_the_config_when_state_has_none() {
        let mut host = with_cidata();
        fetch_config(&mut host, "nocloud", &Cmdline::parse(""), "n", NO_SERVICE).unwrap();
        let effects = host.effects();
        assert!(effects.contains(&Action::LoadModule("/lib/modules/cidata/isofs.ko".into())));
        assert!(effects.contains(&Action::Mount(Mount::new(
            "/dev/vdb",
            CIDATA_MOUNT,
            "iso9660",
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            ""
        ))));
        assert!(effects.contains(&Action::Unmount(CIDATA_MOUNT.into())));
        assert_eq!(
            effects.last(),
            Some(&Action::WriteFile(CONFIG.into(), WORKER.into(), 0o600))
        );

        let mut configured = with_cidata().with_file(CONFIG, "persisted");
        fetch_config(
            &mut configured,
            "nocloud",
            &Cmdline::parse(""),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        assert!(
            !configured
                .effects()
                .iter()
                .any(|e| matches!(e, Action::WriteFile(..)))
        );
    }

    #[test]
    fn a_data_volume_that_does_not_mount_is_logged_and_the_boot_goes_on() {
        // nocloud: maintenance mode.
        let mut host = with_cidata();
        host.refused_mounts.push("/dev/vdb".into());
        let outcome =
            fetch_config(&mut host, "nocloud", &Cmdline::parse(""), "n", NO_SERVICE).unwrap();
        assert_eq!(outcome, Outcome::default());
        let logs = host.logs();
        assert!(
            logs.iter()
                .any(|l| l.contains("nocloud: cidata volume /dev/vdb: mounting")
                    && l.contains("Invalid argument")
                    && l.ends_with("waiting in maintenance mode")),
            "{logs:?}"
        );
        assert!(
            !host
                .effects()
                .iter()
                .any(|e| matches!(e, Action::WriteFile(..)))
        );
        // opennebula: maintenance mode too.
        let mut one =
            RecordingHost::default().with_file("/lib/modules/cidata/load-order", "isofs.ko\n");
        one.present.push("/sys/class/block/sr0".into());
        one.heads.insert("/dev/sr0".into(), iso_head("CONTEXT"));
        one.refused_mounts.push("/dev/sr0".into());
        let outcome =
            fetch_config(&mut one, "opennebula", &Cmdline::parse(""), "n", NO_SERVICE).unwrap();
        assert_eq!(outcome, Outcome::default());
        assert!(
            one.logs()
                .iter()
                .any(|l| l.contains("opennebula: /dev/sr0: mounting"))
        );
        // openstack: its metadata service is asked instead (silent here: retried).
        let mut drive =
            RecordingHost::default().with_file("/lib/modules/cidata/load-order", "isofs.ko\n");
        drive.present.push("/sys/class/block/vdb".into());
        drive.heads.insert("/dev/vdb".into(), iso_head("config-2"));
        drive.refused_mounts.push("/dev/vdb".into());
        let outcome = fetch_config(
            &mut drive,
            "openstack",
            &Cmdline::parse(""),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::default());
        let logs = drive.logs();
        assert!(
            logs[0].contains("config drive /dev/vdb: mounting")
                && logs[0].ends_with("asking the metadata service"),
            "{logs:?}"
        );
        assert!(
            logs.iter()
                .any(|l| l.contains("giving up on the metadata service"))
        );
    }

    #[test]
    fn nocloud_meta_data_gives_metadata_and_hostname_and_bad_user_data_is_refused() {
        let mut host = with_cidata();
        host.files.insert(
            "/run/cidata/meta-data".into(),
            "instance-id: iid-node-7\nlocal-hostname: node-7.example.org\n".into(),
        );
        host.files.insert(
            "/run/cidata/network-config".into(),
            "version: 2\nethernets:\n  eth0:\n    addresses: [192.0.2.7/24]\n".into(),
        );
        host.files
            .insert("/run/cidata/user-data".into(), "version: v1alpha1\n".into());
        let outcome =
            fetch_config(&mut host, "nocloud", &Cmdline::parse(""), "n", NO_SERVICE).unwrap();
        let metadata = outcome.metadata.unwrap();
        assert_eq!(
            (metadata.instance_id.as_str(), metadata.hostname.as_str()),
            ("iid-node-7", "node-7.example.org")
        );
        assert_eq!(outcome.hostname.as_deref(), Some("node-7"));
        assert!(host.effects().contains(&Action::Hostname("node-7".into())));
        let problem = outcome.user_data_problem.unwrap();
        assert!(problem.contains("not a valid machine config"), "{problem}");
        assert!(
            !host
                .effects()
                .iter()
                .any(|e| matches!(e, Action::WriteFile(..)))
        );
        assert!(
            host.logs()
                .iter()
                .any(|l| l.contains("192.0.2.7/24 on eth0"))
        );
    }

    #[test]
    fn a_cloud_provider_gives_metadata_hostname_and_its_user_data_as_the_config() {
        use super::super::cloud::testserver::{serve, table};
        let answers = table(&[
            (
                "GET /metadata/v1.json",
                br#"{"droplet_id":42,"hostname":"node-42","region":"ams3"}"#,
            ),
            ("GET /metadata/v1/user-data", WORKER.as_bytes()),
        ]);
        let (base, _) = serve(answers, Vec::new());
        let mut host = RecordingHost::default();
        let outcome =
            fetch_config(&mut host, "digital-ocean", &Cmdline::parse(""), "n", &base).unwrap();
        assert_eq!(outcome.metadata.unwrap().provider_id, "digitalocean://42");
        assert_eq!(outcome.user_data_problem, None);
        assert_eq!(
            host.effects(),
            vec![
                Action::WriteFile(CONFIG.into(), WORKER.into(), 0o600),
                Action::Hostname("node-42".into()),
            ]
        );
        // talos.hostname= wins over the provider's; a persisted config is kept.
        let mut configured = RecordingHost::default().with_file(CONFIG, "persisted");
        let cmdline = Cmdline::parse("talos.hostname=mine");
        let outcome = fetch_config(&mut configured, "digital-ocean", &cmdline, "n", &base).unwrap();
        assert!(outcome.metadata.is_some() && outcome.hostname.is_none());
        assert!(configured.effects().is_empty());
    }

    #[test]
    fn opennebula_reads_context_sh_from_the_volume_labelled_context() {
        use base64::Engine as _;
        let user_data = base64::engine::general_purpose::STANDARD.encode(WORKER);
        let mut host =
            RecordingHost::default().with_file("/lib/modules/cidata/load-order", "isofs.ko\n");
        host.present.push("/sys/class/block/vda".into());
        host.present.push("/sys/class/block/sr0".into());
        host.heads.insert("/dev/vda".into(), iso_head("cidata-not"));
        host.heads.insert("/dev/sr0".into(), iso_head("CONTEXT"));
        host.heads.insert(
            "/run/cidata/context.sh".into(),
            format!(
                "ETH0_MAC='02:00:c0:00:02:0a'\nETH0_IP='192.0.2.10'\nETH0_MASK='255.255.255.0'\n\
                 SET_HOSTNAME='one-7'\nVMID='7'\nUSER_DATA='{user_data}'\n"
            )
            .into_bytes(),
        );
        let outcome = fetch_config(
            &mut host,
            "opennebula",
            &Cmdline::parse(""),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        let metadata = outcome.metadata.unwrap();
        assert_eq!(
            (metadata.platform.as_str(), metadata.instance_id.as_str()),
            ("opennebula", "7")
        );
        assert_eq!(outcome.hostname.as_deref(), Some("one-7"));
        assert_eq!(outcome.user_data_problem, None);
        assert!(outcome.network_yaml.unwrap().contains("192.0.2.10/24"));
        let effects = host.effects();
        assert!(effects.contains(&Action::Mount(Mount::new(
            "/dev/sr0",
            CIDATA_MOUNT,
            "iso9660",
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            ""
        ))));
        assert!(effects.contains(&Action::WriteFile(CONFIG.into(), WORKER.into(), 0o600)));
        // A broken context.sh is logged, naming the line, and the node waits.
        let mut broken =
            RecordingHost::default().with_file("/lib/modules/cidata/load-order", "isofs.ko\n");
        broken.present.push("/sys/class/block/sr0".into());
        broken.heads.insert("/dev/sr0".into(), iso_head("context"));
        broken.heads.insert(
            "/run/cidata/context.sh".into(),
            b"VMID='7'\nUSER_DATA=`x`\n".to_vec(),
        );
        let outcome = fetch_config(
            &mut broken,
            "opennebula",
            &Cmdline::parse(""),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::default());
        let logs = broken.logs();
        assert!(
            logs.iter()
                .any(|l| l.contains("context.sh line 2: USER_DATA")),
            "{logs:?}"
        );
        // No such volume: maintenance mode.
        let mut none = RecordingHost::default();
        let outcome = fetch_config(
            &mut none,
            "opennebula",
            &Cmdline::parse(""),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::default());
    }

    #[test]
    fn azure_without_imds_user_data_takes_the_custom_data_of_its_provisioning_media() {
        use super::super::cloud::testserver::{serve, table};
        use base64::Engine as _;
        let compute = r#"{"vmId":"02aab8a4","osProfile":{"computerName":"az-1"}}"#;
        let answers = table(&[(
            "GET /metadata/instance/compute?api-version=2021-12-13&format=json",
            compute.as_bytes(),
        )]);
        let (base, seen) = serve(answers, vec![("GET /metadata/", "Metadata: true")]);
        let mut udf_head = vec![0u8; OPTICAL_HEAD];
        udf_head[32769..32774].copy_from_slice(b"BEA01");
        udf_head[34817..34822].copy_from_slice(b"NSR02");
        let custom = base64::engine::general_purpose::STANDARD.encode(WORKER);
        let mut host =
            RecordingHost::default().with_file("/lib/modules/cidata/load-order", "udf.ko\n");
        host.present.push("/sys/class/block/vda".into());
        host.present.push("/sys/class/block/sr0".into());
        host.heads.insert("/dev/vda".into(), vec![0; 64]);
        host.heads.insert("/dev/sr0".into(), udf_head);
        host.files.insert(
            "/run/cidata/ovf-env.xml".into(),
            format!(
                "<Environment><ProvisioningSection><LinuxProvisioningConfigurationSet>\
                 <CustomData>{custom}</CustomData></LinuxProvisioningConfigurationSet>\
                 </ProvisioningSection></Environment>"
            ),
        );
        let outcome = fetch_config(&mut host, "azure", &Cmdline::parse(""), "n", &base).unwrap();
        assert_eq!(outcome.hostname.as_deref(), Some("az-1"));
        assert_eq!(outcome.user_data_problem, None);
        let effects = host.effects();
        assert!(effects.contains(&Action::Mount(Mount::new(
            "/dev/sr0",
            CIDATA_MOUNT,
            "udf",
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            ""
        ))));
        assert!(effects.contains(&Action::WriteFile(CONFIG.into(), WORKER.into(), 0o600)));
        let logs = host.logs();
        assert!(
            logs.iter()
                .any(|l| l.contains("ovf-env.xml on /dev/sr0 (with CustomData)")),
            "{logs:?}"
        );
        // The mock has no wire server: the failed report is logged, the node configured anyway.
        assert!(
            logs.iter().any(|l| l.contains("still provisioning")),
            "{logs:?}"
        );
        assert!(
            seen.lock()
                .unwrap()
                .iter()
                .any(|r| r.starts_with("GET /machine/?comp=goalstate"))
        );
    }

    #[test]
    fn openstack_reads_its_config_drive_before_the_metadata_service() {
        let mut host =
            RecordingHost::default().with_file("/lib/modules/cidata/load-order", "isofs.ko\n");
        host.present.push("/sys/class/block/vdb".into());
        host.heads.insert("/dev/vdb".into(), iso_head("config-2"));
        let latest = "/run/cidata/openstack/latest";
        host.files.insert(
            format!("{latest}/meta_data.json").into(),
            r#"{"uuid":"83679162-1378-4288-a2d4-70e13ec132aa","hostname":"os-1.novalocal"}"#.into(),
        );
        host.files
            .insert(format!("{latest}/user_data").into(), WORKER.into());
        // No metadata service: the drive alone configures the node.
        let outcome =
            fetch_config(&mut host, "openstack", &Cmdline::parse(""), "n", NO_SERVICE).unwrap();
        let metadata = outcome.metadata.unwrap();
        assert_eq!(
            metadata.provider_id,
            "openstack:///83679162-1378-4288-a2d4-70e13ec132aa"
        );
        assert_eq!(outcome.hostname.as_deref(), Some("os-1"));
        let effects = host.effects();
        assert!(effects.contains(&Action::WriteFile(CONFIG.into(), WORKER.into(), 0o600)));
        assert!(!effects.iter().any(|e| matches!(e, Action::Sleep(_))));

        // A drive without meta_data.json: the metadata service is asked (and is silent here).
        let mut broken =
            RecordingHost::default().with_file("/lib/modules/cidata/load-order", "isofs.ko\n");
        broken.present.push("/sys/class/block/vdb".into());
        broken.heads.insert("/dev/vdb".into(), iso_head("CONFIG-2"));
        let outcome = fetch_config(
            &mut broken,
            "openstack",
            &Cmdline::parse(""),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::default());
        assert!(
            broken
                .logs()
                .iter()
                .any(|l| l.contains("asking the metadata service"))
        );
        assert!(
            broken
                .effects()
                .iter()
                .any(|e| matches!(e, Action::Sleep(_)))
        );
    }

    #[test]
    fn a_platform_without_a_config_source_here_says_so_and_waits() {
        for (platform, said) in [
            (
                "vmware",
                Some("vmware: guestinfo (VMware's backdoor RPC) is not read"),
            ),
            (
                "aws2",
                Some("talos.platform=\"aws2\" is not a platform this release knows"),
            ),
            ("metal", None),
            ("container", None),
        ] {
            let mut host = RecordingHost::default();
            let outcome =
                fetch_config(&mut host, platform, &Cmdline::parse(""), "n", NO_SERVICE).unwrap();
            assert_eq!(outcome, Outcome::default());
            let logs = host.logs();
            match said {
                Some(said) => assert!(
                    logs.len() == 1
                        && logs[0].contains(said)
                        && logs[0].ends_with("waiting in maintenance mode"),
                    "{platform}: {logs:?}"
                ),
                None => assert!(logs.is_empty(), "{platform}: {logs:?}"),
            }
            assert!(
                !host
                    .effects()
                    .iter()
                    .any(|e| matches!(e, Action::Download(_) | Action::Sleep(_))),
                "{platform}"
            );
        }
    }

    #[test]
    fn a_silent_metadata_service_is_retried_with_back_off_then_maintenance() {
        let mut host = RecordingHost::default();
        let outcome = fetch_config(&mut host, "aws", &Cmdline::parse(""), "n", NO_SERVICE).unwrap();
        assert_eq!(outcome, Outcome::default());
        let sleeps: Vec<Duration> = host
            .effects()
            .iter()
            .filter_map(|e| match e {
                Action::Sleep(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert_eq!(sleeps.len(), DOWNLOAD_BACKOFF.len());
        assert_eq!(sleeps[..3], [1, 2, 4].map(Duration::from_secs));
        let logs = host.logs();
        assert!(
            logs[0].contains("aws: http://127.0.0.1:1/latest/api/token: connecting"),
            "{}",
            logs[0]
        );
        assert!(logs[0].contains("does not answer as expected, trying again in 1s"));
        assert!(
            logs.last()
                .unwrap()
                .contains("giving up on the metadata service")
        );
    }

    #[test]
    fn metal_downloads_talos_config_with_variables_and_retries() {
        let mut host = RecordingHost::default()
            .with_file("/sys/class/dmi/id/product_uuid", "1234-abcd\n")
            .with_file("/sys/class/net/eth0/address", "52:54:00:12:34:56\n");
        host.downloads = vec![
            Err("connecting: refused".into()),
            Ok("version: v1alpha1\n".into()),
        ];
        let cmdline =
            Cmdline::parse("talos.config=http://10.0.2.100/c/${uuid}/${mac}/${hostname}.yaml");
        fetch_config(&mut host, "metal", &cmdline, "node-1", NO_SERVICE).unwrap();
        let url = "http://10.0.2.100/c/1234-abcd/52:54:00:12:34:56/node-1.yaml";
        assert_eq!(
            host.effects(),
            vec![
                Action::Download(url.into()),
                Action::Sleep(Duration::from_secs(1)),
                Action::Download(url.into()),
                Action::WriteFile(CONFIG.into(), "version: v1alpha1\n".into(), 0o600),
            ]
        );
    }

    #[test]
    fn metal_gives_up_after_the_back_off_and_skips_none_or_a_persisted_config() {
        let mut host = RecordingHost {
            downloads: vec![Err("404".into()); 20],
            ..RecordingHost::default()
        };
        fetch_config(
            &mut host,
            "metal",
            &Cmdline::parse("talos.config=http://h/c"),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        let downloads = host
            .effects()
            .iter()
            .filter(|e| matches!(e, Action::Download(_)))
            .count();
        assert_eq!(downloads, DOWNLOAD_BACKOFF.len() + 1);
        assert!(host.logs().last().is_some_and(|l| l.contains("giving up")));

        let mut none = RecordingHost::default();
        fetch_config(
            &mut none,
            "metal",
            &Cmdline::parse("talos.config=none"),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        assert!(none.effects().is_empty());
        let mut configured = RecordingHost::default().with_file(CONFIG, "persisted");
        fetch_config(
            &mut configured,
            "metal",
            &Cmdline::parse("talos.config=http://h/c"),
            "n",
            NO_SERVICE,
        )
        .unwrap();
        assert!(configured.effects().is_empty());
    }
}
