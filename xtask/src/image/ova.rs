//! The vmware appliance: an OVA (a ustar archive) holding, in this order, the OVF
//! descriptor `disk.ovf`, the manifest `disk.mf` (SHA-256 of the other two) and the disk
//! `disk.vmdk`, a streamOptimized VMDK — the names and order upstream's OVA uses; the OVF
//! specification wants the descriptor first.
//!
//! The VMDK comes from `qemu-img convert` (`compat6,subformat=streamOptimized,
//! adapter_type=lsilogic`), whose only non-reproducible byte is the random content id in
//! its descriptor: it is set to [`CONTENT_ID`]. The OVF offers the `talos.config`
//! property through the `com.vmware.guestInfo` transport, where the vmware platform reads
//! its config.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use super::{run, sha256_hex};

pub const OVF_NAME: &str = "disk.ovf";
pub const MANIFEST_NAME: &str = "disk.mf";
pub const VMDK_NAME: &str = "disk.vmdk";
/// The VMDK descriptor's content id (`CID=`): fixed, so that the disk is reproducible.
pub const CONTENT_ID: &str = "5a1f0c2e";
/// How far into the VMDK its embedded descriptor is looked for.
const DESCRIPTOR_WINDOW: usize = 64 * 1024;

/// Writes the OVA `out` of the raw disk `raw`, using `work` for the VMDK.
pub fn build(raw: &Path, work: &Path, out: &Path) -> anyhow::Result<()> {
    let vmdk = work.join(VMDK_NAME);
    let _ = std::fs::remove_file(&vmdk);
    run(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vmdk", "-o"])
        .arg("compat6,subformat=streamOptimized,adapter_type=lsilogic")
        .arg(raw)
        .arg(&vmdk))?;
    fix_content_id(&vmdk)?;
    let capacity = std::fs::metadata(raw)?.len();
    let vmdk_bytes = std::fs::read(&vmdk)?;
    let ovf = descriptor(vmdk_bytes.len() as u64, capacity);
    let manifest = manifest(&ovf, &vmdk_bytes);
    let mut archive = tar::Builder::new(File::create(out)?);
    archive.mode(tar::HeaderMode::Deterministic);
    for (name, bytes) in [
        (OVF_NAME, ovf.as_bytes()),
        (MANIFEST_NAME, manifest.as_bytes()),
        (VMDK_NAME, &vmdk_bytes[..]),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        archive.append_data(&mut header, name, bytes)?;
    }
    archive.into_inner()?.sync_all()?;
    Ok(())
}

/// Replaces the random `CID=` of the VMDK's embedded descriptor with [`CONTENT_ID`].
fn fix_content_id(vmdk: &Path) -> anyhow::Result<()> {
    let mut file = File::options().read(true).write(true).open(vmdk)?;
    let mut head = Vec::with_capacity(DESCRIPTOR_WINDOW);
    (&mut file)
        .take(DESCRIPTOR_WINDOW as u64)
        .read_to_end(&mut head)?;
    let at = head
        .windows(5)
        .position(|w| w == b"\nCID=")
        .with_context(|| format!("{}: no CID= in its descriptor", vmdk.display()))?
        + 5;
    let id = head.get(at..at + CONTENT_ID.len()).unwrap_or_default();
    if id.len() != CONTENT_ID.len() || !id.iter().all(u8::is_ascii_hexdigit) {
        bail!(
            "{}: the descriptor's CID is not 8 hex digits",
            vmdk.display()
        );
    }
    file.seek(SeekFrom::Start(at as u64))?;
    file.write_all(CONTENT_ID.as_bytes())?;
    Ok(())
}

/// The manifest: each file's SHA-256, as ovftool writes it.
pub fn manifest(ovf: &str, vmdk: &[u8]) -> String {
    format!(
        "SHA256({VMDK_NAME})= {}\nSHA256({OVF_NAME})= {}\n",
        sha256_hex(vmdk),
        sha256_hex(ovf.as_bytes())
    )
}

/// The OVF 1.0 descriptor of one VM with the disk (`vmdk_len` bytes in the archive,
/// `capacity` bytes as a disk), 2 vCPUs, 2 GiB, an LSI Logic SCSI controller and a
/// VMXNET3 NIC.
pub fn descriptor(vmdk_len: u64, capacity: u64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:id="system-disk-file" ovf:href="{VMDK_NAME}" ovf:size="{vmdk_len}"/>
  </References>
  <DiskSection>
    <Info>The system disk</Info>
    <Disk ovf:diskId="system-disk" ovf:fileRef="system-disk-file" ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Networks</Info>
    <Network ovf:name="VM Network">
      <Description>The network of the first NIC</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="talos-rs">
    <Info>A talos-rs node</Info>
    <Name>talos-rs</Name>
    <ProductSection ovf:required="false">
      <Info>talos-rs machine configuration</Info>
      <Property ovf:key="talos.config" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>Machine configuration</Label>
        <Description>The machine config, base64-encoded or as is</Description>
      </Property>
    </ProductSection>
    <OperatingSystemSection ovf:id="101" vmw:osType="other5xLinux64Guest">
      <Info>Linux, 64-bit</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection ovf:transport="com.vmware.guestInfo">
      <Info>Virtual hardware</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>talos-rs</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-15</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>2 virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>2048 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>System disk</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/system-disk</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ova_holds_descriptor_manifest_and_a_stream_optimized_vmdk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let pattern: Vec<u8> = (0..(3 * 1024 * 1024)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&raw, &pattern).unwrap();
        let first = dir.path().join("first.ova");
        let second = dir.path().join("second.ova");
        build(&raw, dir.path(), &first).unwrap();
        build(&raw, dir.path(), &second).unwrap();
        let bytes = std::fs::read(&first).unwrap();
        assert_eq!(bytes, std::fs::read(&second).unwrap(), "not reproducible");

        let mut archive = tar::Archive::new(&bytes[..]);
        let mut files = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            assert_eq!(entry.header().uid().unwrap(), 0);
            assert!(entry.header().as_ustar().is_some(), "not ustar");
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            files.push((name, content));
        }
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [OVF_NAME, MANIFEST_NAME, VMDK_NAME]);
        let (ovf, mf, vmdk) = (&files[0].1, &files[1].1, &files[2].1);
        let ovf = std::str::from_utf8(ovf).unwrap();
        assert!(
            ovf.contains(&format!(r#"ovf:size="{}""#, vmdk.len())),
            "{ovf}"
        );
        assert!(ovf.contains(r#"ovf:capacity="3145728""#), "{ovf}");
        assert_eq!(std::str::from_utf8(mf).unwrap(), manifest(ovf, vmdk));
        assert_eq!(&vmdk[..4], b"KDMV");
        let head = String::from_utf8_lossy(&vmdk[..DESCRIPTOR_WINDOW.min(vmdk.len())]);
        assert!(head.contains(&format!("\nCID={CONTENT_ID}\n")), "{head}");
        assert!(head.contains(r#"createType="streamOptimized""#), "{head}");

        let extracted = dir.path().join("extracted.vmdk");
        std::fs::write(&extracted, vmdk).unwrap();
        let info = Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&extracted)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["format"], "vmdk", "{info}");
        assert_eq!(info["virtual-size"], 3 * 1024 * 1024, "{info}");
        let back = dir.path().join("back.raw");
        run(Command::new("qemu-img")
            .args(["convert", "-q", "-f", "vmdk", "-O", "raw"])
            .arg(&extracted)
            .arg(&back))
        .unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), pattern);
    }
}
