//! `machine.install.diskSelector`: the install disk chosen by what the machine's disks are.
//! Every property the selector gives must match (model, name, serial, modalias, uuid, wwid and
//! busPath as globs; size as a [`SizeMatcher`]; type as `ssd`, `hdd`, `nvme` or `sd`); the first
//! matching disk in name order is taken. CD drives and read-only disks are never taken.
//!
//! `UnattendedInstallConfig.provisioning.diskSelector.match`: a CEL expression over `disk`
//! (upstream's `DiskSpec` field names: `dev_path`, `size`, `model`, `transport`, `rotational`,
//! …), `system_disk` and the size constants (`GB`, `GiB`, …); the first disk it is true for.

use machineconfig::v1alpha1::{InstallDiskSelector, SizeMatcher};
use proto::storage::Disk;
use proto::storage::disk::DiskType;

use crate::block::{pretty_size, transport};
use crate::error::MachinedError;

/// The device path of the first of `disks` that `selector` matches.
pub fn select(selector: &InstallDiskSelector, disks: &[Disk]) -> Result<String, MachinedError> {
    let size = selector
        .size
        .as_deref()
        .map(SizeMatcher::parse)
        .transpose()
        .map_err(|error| {
            MachinedError::InvalidArgument(format!("machine.install.diskSelector.size: {error}"))
        })?;
    disks
        .iter()
        .filter(|disk| !disk.readonly && disk.r#type() != DiskType::Cd)
        .find(|disk| matches(selector, size.as_ref(), disk))
        .map(|disk| disk.device_name.clone())
        .ok_or_else(|| no_match("machine.install.diskSelector", disks))
}

/// The device path of the first of `disks` for which the CEL `expression` is true.
pub fn select_by_expression(expression: &str, disks: &[Disk]) -> Result<String, MachinedError> {
    const FIELD: &str = "UnattendedInstallConfig.provisioning.diskSelector.match";
    let invalid =
        |error: cel::CelError| MachinedError::InvalidArgument(format!("{FIELD}: {error}"));
    let expression = cel::Expression::parse(expression).map_err(invalid)?;
    let mut variables = cel::size_units();
    for disk in disks
        .iter()
        .filter(|disk| !disk.readonly && disk.r#type() != DiskType::Cd)
    {
        variables.insert("disk".into(), cel_disk(disk));
        variables.insert("system_disk".into(), cel::Value::Bool(disk.system_disk));
        if expression.matches(&variables).map_err(invalid)? {
            return Ok(disk.device_name.clone());
        }
    }
    Err(no_match(FIELD, disks))
}

/// A disk as upstream's CEL environment shows it (`block.DiskSpec`'s field names).
fn cel_disk(disk: &Disk) -> cel::Value {
    use cel::Value::{Bool, List, String as Text, Uint};
    let fields = [
        ("dev_path", Text(disk.device_name.clone())),
        ("size", Uint(disk.size)),
        ("pretty_size", Text(pretty_size(disk.size))),
        ("model", Text(disk.model.clone())),
        ("serial", Text(disk.serial.clone())),
        ("modalias", Text(disk.modalias.clone())),
        ("wwid", Text(disk.wwid.clone())),
        ("uuid", Text(disk.uuid.clone())),
        ("bus_path", Text(disk.bus_path.clone())),
        ("sub_system", Text(disk.subsystem.clone())),
        ("transport", Text(transport(&disk.name).to_string())),
        ("rotational", Bool(disk.r#type() == DiskType::Hdd)),
        ("readonly", Bool(disk.readonly)),
        ("cdrom", Bool(disk.r#type() == DiskType::Cd)),
        ("symlinks", List(Vec::new())),
        ("secondary_disks", List(Vec::new())),
    ];
    cel::Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
    )
}

fn no_match(field: &str, disks: &[Disk]) -> MachinedError {
    let seen: Vec<String> = disks.iter().map(describe).collect();
    MachinedError::FailedPrecondition(format!(
        "{field} matches no disk of this machine (disks: {})",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join("; ")
        }
    ))
}

fn matches(selector: &InstallDiskSelector, size: Option<&SizeMatcher>, disk: &Disk) -> bool {
    let globs = [
        (&selector.model, &disk.model),
        (&selector.name, &disk.name),
        (&selector.serial, &disk.serial),
        (&selector.modalias, &disk.modalias),
        (&selector.uuid, &disk.uuid),
        (&selector.wwid, &disk.wwid),
        (&selector.bus_path, &disk.bus_path),
    ];
    globs.into_iter().all(|(pattern, value)| {
        pattern
            .as_deref()
            .is_none_or(|pattern| crate::glob::matches(pattern, value))
    }) && size.is_none_or(|size| size.matches(disk.size))
        && selector
            .disk_type
            .as_deref()
            .is_none_or(|kind| type_name(disk.r#type()) == Some(kind))
}

/// The selector's name of a disk type.
fn type_name(kind: DiskType) -> Option<&'static str> {
    match kind {
        DiskType::Ssd => Some("ssd"),
        DiskType::Hdd => Some("hdd"),
        DiskType::Nvme => Some("nvme"),
        DiskType::Sd => Some("sd"),
        _ => None,
    }
}

/// A disk as the error lists it.
fn describe(disk: &Disk) -> String {
    let kind = type_name(disk.r#type()).unwrap_or("cd");
    let mut text = format!("{} {kind} {} bytes", disk.device_name, disk.size);
    if !disk.model.is_empty() {
        text.push_str(&format!(" model {:?}", disk.model));
    }
    if disk.readonly {
        text.push_str(" read-only");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, kind: DiskType, gib: u64, model: &str) -> Disk {
        let mut disk = Disk {
            device_name: format!("/dev/{name}"),
            name: name.into(),
            size: gib << 30,
            model: model.into(),
            serial: format!("SN-{name}"),
            bus_path: format!("/pci0000:00/0000:00:0{}.0", name.len()),
            ..Disk::default()
        };
        disk.set_type(kind);
        disk
    }

    fn machine() -> Vec<Disk> {
        vec![
            disk("nvme0n1", DiskType::Nvme, 512, "Samsung SSD 980"),
            disk("sda", DiskType::Hdd, 4096, "WDC WD40EFRX"),
            disk("sdb", DiskType::Ssd, 240, "KINGSTON SA400"),
            disk("sr0", DiskType::Cd, 1, "QEMU DVD-ROM"),
        ]
    }

    fn selector(yaml: &str) -> InstallDiskSelector {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn a_cel_expression_picks_the_first_disk_it_is_true_for() {
        let disks = machine();
        let chosen = |text| select_by_expression(text, &disks);
        assert_eq!(chosen("disk.rotational").unwrap(), "/dev/sda");
        assert_eq!(
            chosen(r#"disk.transport == "nvme" && disk.size >= 500u * GiB"#).unwrap(),
            "/dev/nvme0n1"
        );
        assert_eq!(
            chosen(r#"!disk.rotational && glob("KINGSTON*", disk.model)"#).unwrap(),
            "/dev/sdb"
        );
        // The CD drive is never taken.
        let error = chosen("disk.cdrom").unwrap_err().to_string();
        assert!(error.contains("matches no disk"), "{error}");
        let error = chosen("disk.size >").unwrap_err().to_string();
        assert!(
            error.contains("diskSelector.match") && error.contains("end of the expression"),
            "{error}"
        );
        let error = chosen("disk.nope").unwrap_err().to_string();
        assert!(error.contains("no field \"nope\""), "{error}");
    }

    #[test]
    fn every_given_property_must_match_and_the_first_match_wins() {
        let disks = machine();
        let chosen = |yaml| select(&selector(yaml), &disks).unwrap();
        assert_eq!(chosen("type: hdd"), "/dev/sda");
        assert_eq!(chosen("type: ssd"), "/dev/sdb");
        assert_eq!(chosen("size: '>= 300GB'"), "/dev/nvme0n1");
        assert_eq!(chosen("size: '< 300GB'"), "/dev/sdb");
        assert_eq!(chosen("model: WDC*"), "/dev/sda");
        assert_eq!(chosen("serial: SN-sd?"), "/dev/sda");
        assert_eq!(chosen("size: '>= 200GB'\ntype: ssd"), "/dev/sdb");
        assert_eq!(chosen("name: nvme*"), "/dev/nvme0n1");
    }

    #[test]
    fn no_match_names_the_disks_and_cds_are_never_taken() {
        let disks = machine();
        let error = select(&selector("model: QEMU*"), &disks).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("matches no disk"), "{text}");
        assert!(
            text.contains("/dev/sda hdd 4398046511104 bytes model \"WDC WD40EFRX\""),
            "{text}"
        );
        assert!(text.contains("/dev/sr0 cd"), "{text}");
        let mut read_only = machine();
        read_only[1].readonly = true;
        assert_eq!(
            select(&selector("type: hdd"), &read_only).map_err(|_| ()),
            Err(())
        );
        let bad = select(&selector("size: '>= lots'"), &disks).unwrap_err();
        assert!(bad.to_string().contains("diskSelector.size"), "{bad}");
    }
}
