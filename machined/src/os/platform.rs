//! The platform (reference §7.3): `talos.platform=` when given, else `nocloud` when the SMBIOS
//! serial says `ds=nocloud…` or a volume is labelled `cidata`, else `metal`. For nocloud the
//! `user-data` file of the cidata volume becomes the machine config when STATE holds none. For
//! metal, `talos.config=http://…` is downloaded (after the network is up, with `${uuid}`,
//! `${serial}`, `${mac}` and `${hostname}` substituted) and becomes the config, retried with
//! back-off for about two minutes before the node waits in maintenance mode instead.
//!
//! Limits: cidata must be an iso9660 or FAT volume on a block device the kernel already sees
//! (virtio, not an IDE CD-ROM); `nocloud-net` URLs, `#include` user-data, meta-data and
//! network-config are not read; `talos.config=` takes plain http only (no CA bundle in the
//! image) and not `metal-iso`; other platforms are only names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::MsFlags;

use super::cmdline::Cmdline;
use super::host::{Host, Mount};
use super::sequence::load_modules;
use crate::error::MachinedError;

/// The persisted config on STATE.
const CONFIG: &str = "/system/state/config.yaml";
/// Where the cidata volume is mounted while its user-data is read.
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

/// For `nocloud` without a persisted config: copies the cidata volume's `user-data` to STATE.
pub fn fetch_config<H: Host>(
    host: &mut H,
    platform: &str,
    cmdline: &Cmdline,
    hostname: &str,
) -> Result<(), MachinedError> {
    if host.exists(Path::new(CONFIG)) {
        return Ok(());
    }
    match (platform, cmdline.get("talos.config")) {
        ("nocloud", _) => from_cidata(host),
        ("metal", Some(url)) if url != "none" => {
            let url = expand(host, url, hostname);
            download(host, &url)
        }
        _ => Ok(()),
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

/// The nocloud `user-data` of a cidata volume.
fn from_cidata<H: Host>(host: &mut H) -> Result<(), MachinedError> {
    let Some((device, fstype)) = find_cidata(host)? else {
        host.log("machined: nocloud: no cidata volume; waiting in maintenance mode");
        return Ok(());
    };
    load_modules(host, Path::new(CIDATA_MODULES))?;
    host.create_dir(Path::new(CIDATA_MOUNT))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    host.mount(&Mount::new(
        &device.display().to_string(),
        CIDATA_MOUNT,
        fstype,
        flags,
        "",
    ))?;
    let user_data = host.read_file(&Path::new(CIDATA_MOUNT).join("user-data"));
    host.unmount(Path::new(CIDATA_MOUNT))?;
    match user_data {
        Ok(text) if text.trim_start().starts_with("#include") => host.log(
            "machined: nocloud: #include user-data is not supported; waiting in maintenance mode",
        ),
        Ok(text) => {
            host.write_file(Path::new(CONFIG), text.as_bytes(), 0o600)?;
            host.log(&format!(
                "machined: nocloud: config taken from {}",
                device.display()
            ));
        }
        Err(error) => host.log(&format!("machined: nocloud: {error}")),
    }
    Ok(())
}

/// The first block device whose iso9660 volume id or FAT label is `cidata` (any case).
fn find_cidata<H: Host>(host: &mut H) -> Result<Option<(PathBuf, &'static str)>, MachinedError> {
    for name in host.list_dir(Path::new("/sys/class/block"))? {
        if name.starts_with("loop") || name.starts_with("ram") {
            continue;
        }
        let device = Path::new("/dev").join(&name);
        let Ok(head) = host.read_head(&device, 32 * 1024 + 2048) else {
            continue;
        };
        if let Some(fstype) = cidata_filesystem(&head) {
            return Ok(Some((device, fstype)));
        }
    }
    Ok(None)
}

/// `iso9660` or `vfat` when the first bytes of a volume name it `cidata`.
fn cidata_filesystem(head: &[u8]) -> Option<&'static str> {
    let label = |range: std::ops::Range<usize>| {
        head.get(range)
            .map(|b| String::from_utf8_lossy(b).trim().to_ascii_lowercase())
    };
    if head.get(32769..32774) == Some(b"CD001") && label(32808..32840)? == "cidata" {
        return Some("iso9660");
    }
    let fat32 = head.get(0x52..0x57) == Some(b"FAT32") && label(0x47..0x52)? == "cidata";
    let fat16 = head.get(0x36..0x39) == Some(b"FAT") && label(0x2b..0x36)? == "cidata";
    (fat32 || fat16).then_some("vfat")
}

#[cfg(test)]
mod tests {
    use super::super::host::{Action, RecordingHost};
    use super::*;

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
            .insert("/run/cidata/user-data".into(), "version: v1alpha1\n".into());
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
        fetch_config(&mut host, "nocloud", &Cmdline::parse(""), "n").unwrap();
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
            Some(&Action::WriteFile(
                CONFIG.into(),
                "version: v1alpha1\n".into(),
                0o600
            ))
        );

        let mut configured = with_cidata().with_file(CONFIG, "persisted");
        fetch_config(&mut configured, "nocloud", &Cmdline::parse(""), "n").unwrap();
        assert!(configured.effects().is_empty());
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
        fetch_config(&mut host, "metal", &cmdline, "node-1").unwrap();
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
        )
        .unwrap();
        assert!(none.effects().is_empty());
        let mut configured = RecordingHost::default().with_file(CONFIG, "persisted");
        fetch_config(
            &mut configured,
            "metal",
            &Cmdline::parse("talos.config=http://h/c"),
            "n",
        )
        .unwrap();
        assert!(configured.effects().is_empty());
    }
}
