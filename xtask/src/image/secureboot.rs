//! `cargo xtask image --secureboot`: the Secure Boot artifacts, from the outputs of a normal
//! build, into `_out/image/`:
//!
//! - `secureboot/`: the development keys, made once and kept (never committed): upstream's
//!   `uki-signing-key.pem`, `uki-signing-cert.pem` (`.der`), `db.auth`, `KEK.auth`, `PK.auth`
//!   (what `talosctl gen secureboot uki` and `database` write), and `OVMF_VARS_4M.fd`, a copy of
//!   OVMF's blank variables with the certificate enrolled as PK, KEK and db (`virt-fw-vars`).
//! - `uki.efi`: the unified kernel image, Debian's systemd-boot stub with `.osrel`,
//!   `.cmdline`, `.linux` and `.initrd` sections added after the stub's own (each at the next
//!   4 KiB boundary, a multiple of the stub's SectionAlignment), signed with `sbsign`.
//! - `disk-secureboot.raw`: the normal disk image with its EFI system partition replaced by a
//!   FAT holding the signed UKI as `EFI/BOOT/BOOTX64.EFI`; BOOT, META, STATE and EPHEMERAL
//!   stay as in `disk.raw`, so the node keeps its state there.
//! - `talos-rs-secureboot.iso`: an El Torito EFI ISO of the same FAT (maintenance mode, no disk).
//!
//! The unsigned UKI is reproducible (objcopy's PE timestamp zeroed, the checksum recomputed);
//! the signed one is not: sbsign's PKCS#7 carries its signing time, and the keys are per machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use bootdisk::layout::{self, MIB, SECTOR};

use super::{Outputs, RELEASE, run};

/// Debian's (`systemd-boot-efi`) UEFI stub.
const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/// OVMF's blank variable store (4 MiB build, to pair with `OVMF_CODE_4M.secboot.fd`).
const BLANK_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The signature owner of the enrolled certificate in the VARS copy.
const OWNER_GUID: &str = "5a1f0c2e-0000-4000-8000-0000000000b1";
const SECTION_ALIGNMENT: u64 = 4096;
const UKI_KEY: &str = "uki-signing-key.pem";
const UKI_CERT: &str = "uki-signing-cert.pem";
const UKI_CERT_DER: &str = "uki-signing-cert.der";
const ENROLLED_VARS: &str = "OVMF_VARS_4M.fd";

/// Paths of the Secure Boot outputs.
#[derive(Debug)]
pub struct SecureBootOutputs {
    pub keys: PathBuf,
    pub uki: PathBuf,
    pub disk: PathBuf,
    pub iso: PathBuf,
}

impl SecureBootOutputs {
    pub fn new(outputs: &Outputs) -> Self {
        SecureBootOutputs {
            keys: outputs.dir.join("secureboot"),
            uki: outputs.dir.join("uki.efi"),
            disk: outputs.dir.join("disk-secureboot.raw"),
            iso: outputs.dir.join("talos-rs-secureboot.iso"),
        }
    }

    /// The VARS file with the signing certificate enrolled.
    pub fn vars(&self) -> PathBuf {
        self.keys.join(ENROLLED_VARS)
    }
}

/// Builds the keys (if missing), the signed UKI, the disk image and the ISO.
pub fn build(outputs: &Outputs) -> anyhow::Result<SecureBootOutputs> {
    let sb = SecureBootOutputs::new(outputs);
    ensure_keys(&sb.keys)?;
    let work = outputs.dir.join("secureboot-work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let cmdline = std::fs::read_to_string(outputs.cmdline())?;
    let unsigned = work.join("uki-unsigned.efi");
    assemble_uki(
        &UkiInputs {
            kernel: &outputs.kernel(),
            initramfs: &outputs.initramfs(),
            cmdline: cmdline.trim(),
            work: &work,
        },
        &unsigned,
    )?;
    let _ = std::fs::remove_file(&sb.uki);
    run(Command::new("sbsign")
        .arg("--key")
        .arg(sb.keys.join(UKI_KEY))
        .arg("--cert")
        .arg(sb.keys.join(UKI_CERT))
        .arg("--output")
        .arg(&sb.uki)
        .arg(&unsigned)
        .stdout(Stdio::null())
        .stderr(Stdio::null()))?;

    // The FAT keeps the file's time (mcopy -m): a fixed one, as every other output.
    super::disk::set_times(&sb.uki)?;
    let uki_len = std::fs::metadata(&sb.uki)?.len();
    let esp_size = layout::partition("EFI").context("the layout has no EFI partition")?;
    let esp_bytes = esp_size.size_mib * MIB;
    let esp = work.join("esp.img");
    fat_with_uki(&esp, esp_bytes, &sb.uki)?;
    let _ = std::fs::remove_file(&sb.disk);
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(outputs.disk())
        .arg(&sb.disk))?;
    let esp_bytes_read = std::fs::read(&esp)?;
    let disk = std::fs::File::options().write(true).open(&sb.disk)?;
    std::os::unix::fs::FileExt::write_all_at(
        &disk,
        &esp_bytes_read,
        layout::start_sector(esp_size.number) * SECTOR,
    )?;
    drop(disk);

    // The ISO's EFI image: the smallest FAT that holds the UKI (whole MiB, plus slack).
    let iso_root = work.join("iso");
    std::fs::create_dir_all(&iso_root)?;
    fat_with_uki(
        &iso_root.join("efiboot.img"),
        (uki_len / MIB + 4) * MIB,
        &sb.uki,
    )?;
    super::disk::set_times(&iso_root)?;
    let _ = std::fs::remove_file(&sb.iso);
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-R", "-V", "TALOS_RS_SB"])
        .args([
            "-e",
            "efiboot.img",
            "-no-emul-boot",
            "-isohybrid-gpt-basdat",
        ])
        .arg("-o")
        .arg(&sb.iso)
        .arg(&iso_root)
        .env("SOURCE_DATE_EPOCH", "0")
        .stdout(Stdio::null()))?;
    Ok(sb)
}

/// Makes the development keys and the enrolled VARS copy unless they exist.
fn ensure_keys(dir: &Path) -> anyhow::Result<()> {
    let cert = dir.join(UKI_CERT);
    if !cert.exists() {
        std::fs::create_dir_all(dir)?;
        let key = secureboot::SigningKey::generate("talos-rs development UKI signing key", 4096)?;
        write_private(&dir.join(UKI_KEY), key.key_pem.as_bytes())?;
        std::fs::write(dir.join(UKI_CERT_DER), &key.cert_der)?;
        for variable in secureboot::database(&key.cert_der, &key, time::OffsetDateTime::now_utc())?
        {
            std::fs::write(dir.join(variable.variable.file_name()), variable.contents)?;
        }
        std::fs::write(&cert, &key.cert_pem)?;
    }
    let vars = dir.join(ENROLLED_VARS);
    if !vars.exists() {
        run(Command::new("virt-fw-vars")
            .args(["-i", BLANK_VARS, "-o"])
            .arg(&vars)
            .args(["--set-pk", OWNER_GUID])
            .arg(&cert)
            .args(["--add-kek", OWNER_GUID])
            .arg(&cert)
            .args(["--add-db", OWNER_GUID])
            .arg(&cert)
            .arg("--secure-boot")
            .stdout(Stdio::null())
            .stderr(Stdio::null()))
        .context("enrolling the UKI signing certificate with virt-fw-vars (scripts/setup.sh installs it)")?;
    }
    Ok(())
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?
        .write_all(contents)?;
    Ok(())
}

/// The inputs of a unified kernel image.
#[derive(Debug)]
pub struct UkiInputs<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    pub cmdline: &'a str,
    pub work: &'a Path,
}

/// The unsigned UKI: the stub with `.osrel`, `.cmdline`, `.linux`, `.initrd` appended.
fn assemble_uki(inputs: &UkiInputs, out: &Path) -> anyhow::Result<()> {
    let stub = std::fs::read(STUB).with_context(|| format!("reading {STUB} (systemd-boot-efi)"))?;
    let layout = pe_layout(&stub).with_context(|| format!("reading the PE headers of {STUB}"))?;
    let osrel = inputs.work.join("osrel");
    std::fs::write(
        &osrel,
        format!(
            "NAME=\"talos-rs\"\nID=talos-rs\nVERSION_ID={RELEASE}\nPRETTY_NAME=\"talos-rs ({RELEASE})\"\n"
        ),
    )?;
    let cmdline = inputs.work.join("cmdline");
    std::fs::write(&cmdline, inputs.cmdline)?;
    let alignment = SECTION_ALIGNMENT.max(layout.section_alignment);
    let mut next = align(layout.end, alignment);
    let mut command = Command::new("objcopy");
    for (name, file) in [
        (".osrel", osrel.as_path()),
        (".cmdline", cmdline.as_path()),
        (".linux", inputs.kernel),
        (".initrd", inputs.initramfs),
    ] {
        let size = std::fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        command
            .arg("--add-section")
            .arg(format!("{name}={}", file.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={:#x}", layout.image_base + next));
        next = align(next + size, alignment);
    }
    run(command.arg(STUB).arg(out))?;
    // objcopy stamps the PE header with the time of the build: zero it, so that the UKI's
    // bytes depend on its inputs only.
    let mut image = std::fs::read(out)?;
    clear_timestamp(&mut image).with_context(|| format!("patching {}", out.display()))?;
    std::fs::write(out, image)?;
    Ok(())
}

/// Sets the COFF header's TimeDateStamp to 0 and recomputes the optional header's CheckSum.
fn clear_timestamp(image: &mut [u8]) -> anyhow::Result<()> {
    let pe = image
        .get(0x3c..0x40)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .context("truncated")?;
    let timestamp = pe + 8;
    let checksum = pe + 24 + 64;
    anyhow::ensure!(image.len() > checksum + 4, "truncated PE header");
    image[timestamp..timestamp + 4].fill(0);
    image[checksum..checksum + 4].fill(0);
    let sum = pe_checksum(image, checksum);
    image[checksum..checksum + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// The PE image checksum: 16-bit one's-complement-style sum of the file with carries folded,
/// the CheckSum field itself (at `field`) read as zero, plus the file's length.
fn pe_checksum(image: &[u8], field: usize) -> u32 {
    let mut sum: u64 = 0;
    for (index, pair) in image.chunks(2).enumerate() {
        let at = index * 2;
        if (field..field + 4).contains(&at) {
            continue;
        }
        let word = u64::from(pair[0]) | (u64::from(*pair.get(1).unwrap_or(&0)) << 8);
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(image.len() as u32)
}

fn align(value: u64, alignment: u64) -> u64 {
    value.div_ceil(alignment) * alignment
}

/// What the stub's PE headers say about where new sections can go.
#[derive(Debug, PartialEq, Eq)]
struct PeLayout {
    image_base: u64,
    section_alignment: u64,
    /// The first RVA past every section.
    end: u64,
}

fn pe_layout(image: &[u8]) -> anyhow::Result<PeLayout> {
    let u16_at = |at: usize| -> anyhow::Result<u64> {
        let bytes = image.get(at..at + 2).context("truncated")?;
        Ok(u64::from(u16::from_le_bytes([bytes[0], bytes[1]])))
    };
    let u32_at = |at: usize| -> anyhow::Result<u64> {
        let bytes = image.get(at..at + 4).context("truncated")?;
        Ok(u64::from(u32::from_le_bytes(bytes.try_into()?)))
    };
    if image.get(..2) != Some(b"MZ") {
        bail!("no MZ header");
    }
    let pe = u32_at(0x3c)? as usize;
    if image.get(pe..pe + 4) != Some(b"PE\0\0") {
        bail!("no PE signature at {pe:#x}");
    }
    let coff = pe + 4;
    let sections = u16_at(coff + 2)? as usize;
    let optional = coff + 20;
    let optional_size = u16_at(coff + 16)? as usize;
    let image_base = match u16_at(optional)? {
        0x20b => u32_at(optional + 24)? | (u32_at(optional + 28)? << 32),
        0x10b => u32_at(optional + 28)?,
        magic => bail!("unknown optional header magic {magic:#x}"),
    };
    let section_alignment = u32_at(optional + 32)?;
    let table = optional + optional_size;
    let mut end = 0;
    for index in 0..sections {
        let header = table + index * 40;
        let virtual_size = u32_at(header + 8)?;
        let virtual_address = u32_at(header + 12)?;
        end = end.max(virtual_address + virtual_size);
    }
    Ok(PeLayout {
        image_base,
        section_alignment,
        end,
    })
}

/// A FAT of `bytes` holding `uki` as `EFI/BOOT/BOOTX64.EFI`, with fixed serial and times.
fn fat_with_uki(image: &Path, bytes: u64, uki: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(image);
    std::fs::File::create(image)?.set_len(bytes)?;
    let fat = if bytes >= 64 * MIB { "32" } else { "16" };
    run(Command::new("mkfs.fat")
        .args(["-F", fat, "-n", "EFI", "-i", "5A1F0C2F", "--invariant"])
        .arg(image)
        .stdout(Stdio::null()))?;
    let target = format!("{}@@0", image.display());
    run(Command::new("mmd")
        .args(["-i", &target, "::/EFI", "::/EFI/BOOT"])
        .env("SOURCE_DATE_EPOCH", "0"))?;
    run(Command::new("mcopy")
        .args(["-m", "-i", &target])
        .arg(uki)
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .env("SOURCE_DATE_EPOCH", "0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debians_stub_leaves_room_after_its_sections() {
        let Ok(stub) = std::fs::read(STUB) else {
            panic!("{STUB} missing: scripts/setup.sh installs systemd-boot-efi");
        };
        let layout = pe_layout(&stub).unwrap();
        assert_eq!(layout.image_base, 0);
        assert!(layout.section_alignment.is_power_of_two());
        assert!(layout.end > 0x1000 && layout.end < 0x100000, "{layout:?}");
    }

    #[test]
    fn the_checksum_of_debians_stub_is_what_its_header_says() {
        let mut stub = std::fs::read(STUB).unwrap();
        let pe = u32::from_le_bytes(stub[0x3c..0x40].try_into().unwrap()) as usize;
        let field = pe + 24 + 64;
        let stored = u32::from_le_bytes(stub[field..field + 4].try_into().unwrap());
        if stored != 0 {
            assert_eq!(pe_checksum(&stub, field), stored);
        }
        stub[pe + 8] ^= 0xff;
        clear_timestamp(&mut stub).unwrap();
        assert_eq!(&stub[pe + 8..pe + 12], &[0, 0, 0, 0]);
        let recomputed = u32::from_le_bytes(stub[field..field + 4].try_into().unwrap());
        assert_eq!(pe_checksum(&stub, field), recomputed);
    }

    #[test]
    fn a_file_that_is_not_pe_is_refused() {
        assert!(pe_layout(b"MZ").is_err());
        assert!(pe_layout(b"ELF").is_err());
        let mut fake = vec![0u8; 0x100];
        fake[..2].copy_from_slice(b"MZ");
        fake[0x3c] = 0x80;
        assert!(
            pe_layout(&fake)
                .unwrap_err()
                .to_string()
                .contains("PE signature")
        );
    }
}
