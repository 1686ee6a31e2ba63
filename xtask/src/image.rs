//! `cargo xtask image`: builds the talos-rs operating system into `_out/image/`.
//!
//! - `vmlinuz`: the pinned Debian kernel (`kernel/kernel.conf`), unpacked from its `.deb`.
//! - `rootfs.sqsh`: the read-only root, an uncompressed SquashFS of the static musl daemons (apid, trustd, timed), the
//!   Debian tools machined runs (mkfs) with exactly their libraries, the rootfs modules, and
//!   GRUB's boot.img, modules (BIOS and UEFI), the system disk's core.img and its EFI system
//!   partition (sparse) for installs.
//! - `initramfs.img`: a zstd (-19, 32 MiB window) newc cpio of `/init` (machined), `/dev/console`, the boot modules
//!   with their load order, `rootfs.sqsh`
//!   and `release` (the release machined reports, [`RELEASE`]).
//! - `cmdline`: the default kernel command line (`kernel/cmdline.txt`).
//! - `installer.tar`: the installer image `talosctl upgrade --image` installs (kernel and
//!   initramfs in an OCI image layout tarball, crate `installer`).
//! - `disk.raw`, `disk.qcow2`: the system disk, booted by BIOS or UEFI firmware ([`disk`]);
//!   `esp.img`: its EFI system partition; `talos-rs.iso`: a BIOS
//!   ISO that boots into maintenance mode ([`iso`]).
//!
//! - `--secureboot`: also the signed unified kernel image, the Secure Boot disk image and ISO
//!   and the development keys ([`secureboot`]).
//! - `--platform NAME`: a platform's artifact, e.g. `aws-amd64.raw.zst` ([`platforms`]);
//!   with `--prebuilt`, from the outputs already in `_out/image/` without building them.
//!
//! Every output is reproducible: fixed mtimes and owners, sorted entries, no xattrs; the same
//! commit gives the same bytes (`SHA256SUMS` lists them), except the installer, whose manifest
//! signature ECDSA randomises. Every output and `SHA256SUMS` are signed with the project key
//! (`NAME.sig`), whose public half the SquashFS carries ([`signing`]).

mod disk;
mod iso;
mod modinfo;
mod ova;
mod platforms;
pub mod secureboot;
mod vhd;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use installer::cpio;

use crate::bench::workspace_root;
use crate::signing;

/// The musl target of the image's static binaries.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// The pinned kernel package (`kernel/kernel.conf`).
#[derive(Debug)]
pub struct KernelPin {
    pub package: String,
    pub version: String,
    pub release: String,
    pub sha256: String,
}

impl KernelPin {
    pub fn load(root: &Path) -> anyhow::Result<Self> {
        let path = root.join("kernel/kernel.conf");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let value = |key: &str| -> anyhow::Result<String> {
            text.lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .find_map(|line| {
                    let (k, v) = line.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().to_string())
                })
                .with_context(|| format!("{}: no {key}", path.display()))
        };
        Ok(KernelPin {
            package: value("package")?,
            version: value("version")?,
            release: value("release")?,
            sha256: value("sha256")?,
        })
    }

    /// Downloads (once) and unpacks (once) the kernel package; returns the unpacked tree.
    fn fetch(&self, cache: &Path) -> anyhow::Result<PathBuf> {
        let tree = cache.join(format!("{}_{}", self.package, self.version));
        if tree.join(".unpacked").exists() {
            return Ok(tree);
        }
        std::fs::create_dir_all(cache)?;
        let deb = cache.join(format!("{}_{}_amd64.deb", self.package, self.version));
        if !deb.exists() {
            eprintln!("image: downloading {}={}", self.package, self.version);
            run(Command::new("apt-get")
                .args([
                    "download",
                    "-q",
                    &format!("{}={}", self.package, self.version),
                ])
                .current_dir(cache))?;
        }
        let digest = sha256_hex(&std::fs::read(&deb)?);
        if digest != self.sha256 {
            bail!(
                "{}: sha256 {digest}, kernel/kernel.conf pins {}",
                deb.display(),
                self.sha256
            );
        }
        let _ = std::fs::remove_dir_all(&tree);
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        std::fs::write(tree.join(".unpacked"), b"")?;
        Ok(tree)
    }
}

/// Paths of the image outputs.
#[derive(Debug)]
pub struct Outputs {
    pub dir: PathBuf,
}

impl Outputs {
    pub fn new(root: &Path) -> Self {
        Outputs {
            dir: root.join("_out/image"),
        }
    }
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    pub fn initramfs(&self) -> PathBuf {
        self.dir.join("initramfs.img")
    }
    pub fn squashfs(&self) -> PathBuf {
        self.dir.join("rootfs.sqsh")
    }
    pub fn cmdline(&self) -> PathBuf {
        self.dir.join("cmdline")
    }
    pub fn disk(&self) -> PathBuf {
        self.dir.join("disk.raw")
    }
    pub fn disk_qcow2(&self) -> PathBuf {
        self.dir.join("disk.qcow2")
    }
    pub fn iso(&self) -> PathBuf {
        self.dir.join("talos-rs.iso")
    }
    /// GRUB's core.img for the system disk (patched for its BIOS partition).
    pub fn core_img(&self) -> PathBuf {
        self.dir.join("core.img")
    }
    /// The system disk's EFI system partition.
    pub fn esp_img(&self) -> PathBuf {
        self.dir.join("esp.img")
    }
    pub fn installer(&self) -> PathBuf {
        self.dir.join("installer.tar")
    }
}

/// The release this build reports and installs: `v` and the workspace version.
pub const RELEASE: &str = concat!("v", env!("CARGO_PKG_VERSION"));
/// The installer image's name.
pub const INSTALLER_NAME: &str = concat!("ghcr.io/talos-rs/installer:v", env!("CARGO_PKG_VERSION"));

/// `cargo xtask image [--platform NAME[,NAME…] | --platform all] [--prebuilt]`.
pub fn run_image(args: &[String]) -> anyhow::Result<()> {
    let prebuilt = args.iter().any(|arg| arg == "--prebuilt");
    let with_secureboot = args.iter().any(|arg| arg == "--secureboot");
    let args: Vec<&String> = args
        .iter()
        .filter(|arg| *arg != "--prebuilt" && *arg != "--secureboot")
        .collect();
    let chosen = match args[..] {
        [] if !prebuilt || with_secureboot => Vec::new(),
        [flag, value] if flag == "--platform" => platforms::selected(value)?,
        _ => bail!(
            "usage: cargo xtask image [--secureboot] [--platform NAME[,NAME...] | --platform all [--prebuilt]]"
        ),
    };
    let root = workspace_root();
    let outputs = if prebuilt {
        Outputs::new(&root)
    } else {
        build(&root)?
    };
    for line in std::fs::read_to_string(outputs.dir.join("SHA256SUMS"))?.lines() {
        println!("{line}");
    }
    if with_secureboot {
        let started = std::time::Instant::now();
        let sb = secureboot::build(&outputs)?;
        for file in [&sb.uki, &sb.disk, &sb.iso] {
            println!("{}  {}", sha256_hex(&read(file)?), file.display());
        }
        println!(
            "secureboot: UKI built and signed, disk image and ISO in {:.1} s (keys in {})",
            started.elapsed().as_secs_f64(),
            sb.keys.display()
        );
    }
    let cmdline = std::fs::read_to_string(outputs.cmdline())?;
    let started = std::time::Instant::now();
    let built = platforms::build_all(&outputs, cmdline.trim(), &chosen)?;
    for (_, artifact, took) in &built {
        println!(
            "{}: {} bytes in {:.1} s",
            artifact.display(),
            std::fs::metadata(artifact)?.len(),
            took.as_secs_f64()
        );
    }
    if built.len() > 1 {
        println!(
            "{} platform artifacts in {:.1} s",
            built.len(),
            started.elapsed().as_secs_f64()
        );
    }
    println!("outputs in {}", outputs.dir.display());
    Ok(())
}

/// The artifact of each platform `value` names (`all`, or a comma-separated list), built from
/// the image in `outputs` when missing: its path and, when built now, how long that took.
pub fn platform_artifacts(
    outputs: &Outputs,
    value: &str,
) -> anyhow::Result<Vec<(&'static str, PathBuf, Option<std::time::Duration>)>> {
    let cmdline = std::fs::read_to_string(outputs.cmdline())?;
    let chosen = platforms::selected(value)?;
    let path = |platform, packing| {
        outputs
            .dir
            .join(platforms::artifact_name(platform, packing))
    };
    let missing: Vec<_> = chosen
        .iter()
        .copied()
        .filter(|(platform, packing)| !path(platform, *packing).exists())
        .collect();
    let built = platforms::build_all(outputs, cmdline.trim(), &missing)?;
    Ok(chosen
        .into_iter()
        .map(|(platform, packing)| {
            let took = built
                .iter()
                .find(|(name, _, _)| *name == platform)
                .map(|(_, _, took)| *took);
            (platform, path(platform, packing), took)
        })
        .collect())
}

/// Builds every output of the image.
pub fn build(root: &Path) -> anyhow::Result<Outputs> {
    let pin = KernelPin::load(root)?;
    let kernel_tree = pin.fetch(&root.join("_out/cache"))?;
    let binaries = build_binaries(root)?;
    let outputs = Outputs::new(root);
    std::fs::create_dir_all(&outputs.dir)?;
    let key = signing::signing_key(root)?;

    let mut modules = modinfo::ModuleIndex::scan(
        &kernel_tree
            .join("lib/modules")
            .join(&pin.release)
            .join("kernel"),
    )?;
    let boot_modules = modules.load_order(
        &read_list(&root.join("kernel/modules-boot.txt"))?,
        &BTreeSet::new(),
    )?;
    let loaded: BTreeSet<String> = boot_modules.iter().map(|m| m.name.clone()).collect();
    let disk_modules =
        modules.load_order(&read_list(&root.join("kernel/modules-disk.txt"))?, &loaded)?;
    let loaded: BTreeSet<String> = loaded
        .into_iter()
        .chain(disk_modules.iter().map(|m| m.name.clone()))
        .collect();
    let cidata_modules = modules.load_order(
        &read_list(&root.join("kernel/modules-cidata.txt"))?,
        &loaded,
    )?;
    let loaded: BTreeSet<String> = loaded
        .into_iter()
        .chain(cidata_modules.iter().map(|m| m.name.clone()))
        .collect();
    let rootfs_modules = modules.load_order(
        &read_list(&root.join("kernel/modules-rootfs.txt"))?,
        &loaded,
    )?;

    let core_img = outputs.core_img();
    disk::core_img(&core_img)?;
    disk::esp_img(&outputs.esp_img(), &outputs.dir.join("esp"))?;
    let staging = outputs.dir.join("rootfs");
    stage_rootfs(
        root,
        &staging,
        &binaries,
        &[
            ("lib/modules", &rootfs_modules),
            ("lib/modules/disk", &disk_modules),
            ("lib/modules/cidata", &cidata_modules),
        ],
    )?;
    let public_key = staging.join(signing::IMAGE_PUBLIC_KEY);
    std::fs::create_dir_all(public_key.parent().context("key folder")?)?;
    std::fs::write(&public_key, key.public_key().to_pem())?;
    stage_grub(&staging, &core_img, &outputs.esp_img())?;
    make_squashfs(&staging, &outputs.squashfs())?;

    let mut entries = vec![
        cpio::Entry::Dir {
            path: "dev".into(),
            mode: 0o755,
        },
        cpio::Entry::CharDevice {
            path: "dev/console".into(),
            mode: 0o600,
            major: 5,
            minor: 1,
        },
        cpio::Entry::File {
            path: "init".into(),
            mode: 0o755,
            data: read(&binaries.join("machined"))?,
        },
        cpio::Entry::Dir {
            path: "lib".into(),
            mode: 0o755,
        },
        cpio::Entry::Dir {
            path: "lib/modules".into(),
            mode: 0o755,
        },
    ];
    for module in &boot_modules {
        let name = format!("{}.ko", module.name);
        entries.push(cpio::Entry::File {
            path: format!("lib/modules/{name}"),
            mode: 0o644,
            data: read(&module.path)?,
        });
    }
    entries.push(cpio::Entry::File {
        path: "lib/modules/load-order".into(),
        mode: 0o644,
        data: modinfo::load_order_file(&boot_modules).into_bytes(),
    });
    entries.push(cpio::Entry::File {
        path: "release".into(),
        mode: 0o444,
        data: RELEASE.as_bytes().to_vec(),
    });
    for dir in ["proc", "run", "sys", "sysroot", "tmp"] {
        entries.push(cpio::Entry::Dir {
            path: dir.into(),
            mode: 0o755,
        });
    }
    entries.push(cpio::Entry::File {
        path: "rootfs.sqsh".into(),
        mode: 0o444,
        data: read(&outputs.squashfs())?,
    });
    entries.sort_by(|a, b| entry_path(a).cmp(entry_path(b)));
    let mut archive = Vec::new();
    cpio::write(&mut archive, &entries)?;
    let cpio_path = outputs.initramfs().with_extension("cpio");
    std::fs::write(&cpio_path, &archive)?;
    // zstd with a 32 MiB window: the kernel unpacks it once at boot (fast), and everything
    // after reads the uncompressed SquashFS at memory speed. Multi-threaded zstd output does not
    // depend on the number of threads.
    run(Command::new("zstd")
        .args(["-19", "--long=25", "-T0", "-q", "-f", "-o"])
        .arg(outputs.initramfs())
        .arg(&cpio_path))?;
    std::fs::remove_file(&cpio_path)?;

    std::fs::copy(
        kernel_tree
            .join("boot")
            .join(format!("vmlinuz-{}", pin.release)),
        outputs.kernel(),
    )?;
    let cmdline = std::fs::read_to_string(root.join("kernel/cmdline.txt"))?;
    std::fs::write(outputs.cmdline(), format!("{}\n", cmdline.trim()))?;
    let cmdline = std::fs::read_to_string(outputs.cmdline())?;
    disk::build(
        &disk::DiskInputs {
            kernel: &outputs.kernel(),
            initramfs: &outputs.initramfs(),
            cmdline: cmdline.trim(),
            core_img: &core_img,
            esp_img: &outputs.esp_img(),
            work: &outputs.dir.join("disk-work"),
        },
        &outputs.disk(),
        &outputs.disk_qcow2(),
    )?;
    iso::build(
        &outputs.kernel(),
        &outputs.initramfs(),
        cmdline.trim(),
        &outputs.dir.join("iso-work"),
        &outputs.iso(),
    )?;
    installer::write(
        std::io::BufWriter::new(std::fs::File::create(outputs.installer())?),
        &installer::Installer {
            name: INSTALLER_NAME,
            release: RELEASE,
            kernel: &read(&outputs.kernel())?,
            initramfs: &read(&outputs.initramfs())?,
            signer: Some(&key),
        },
    )?;
    write_sums(
        &outputs,
        &[
            outputs.kernel(),
            outputs.initramfs(),
            outputs.squashfs(),
            outputs.cmdline(),
            outputs.disk_qcow2(),
            outputs.iso(),
            outputs.installer(),
        ],
    )?;
    signing::sign_outputs(&outputs, &key)?;
    Ok(outputs)
}

fn entry_path(entry: &cpio::Entry) -> &str {
    match entry {
        cpio::Entry::Dir { path, .. }
        | cpio::Entry::File { path, .. }
        | cpio::Entry::CharDevice { path, .. } => path,
    }
}

/// Where the root filesystem keeps GRUB's files for installs.
const GRUB_ASSETS: &str = "usr/lib/grub";
/// The daemons machined runs from the root filesystem (`/usr/bin`).
const ROOTFS_DAEMONS: &[&str] = &["apid", "trustd", "timed", "networkd"];

/// Static, size-optimised musl builds of the daemons; returns their directory.
pub fn build_binaries(root: &Path) -> anyhow::Result<PathBuf> {
    // ring's C parts need a C compiler for musl (musl-tools).
    let cc_var = "CC_x86_64_unknown_linux_musl";
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args([
            "build",
            "--locked",
            "--quiet",
            "--target",
            TARGET,
            "--profile",
            "image",
            "-p",
            "machined",
            "-p",
            "apid",
            "-p",
            "trustd",
            "-p",
            "timed",
            "-p",
            "networkd",
        ])
        .current_dir(root);
    if std::env::var_os(cc_var).is_none() {
        command.env(cc_var, "musl-gcc");
    }
    run(&mut command)?;
    Ok(target_dir(root).join(TARGET).join("image"))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Lays the root filesystem out in `staging` (removed first), every mode set explicitly:
/// the daemons, the Debian programs of `rootfs/host-programs.txt` with exactly the libraries
/// `ldd` names, module groups (each folder with its `load-order`), `rootfs/etc`.
pub fn stage_rootfs(
    root: &Path,
    staging: &Path,
    binaries: &Path,
    module_groups: &[(&str, &[modinfo::Module])],
) -> anyhow::Result<()> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)?;
    }
    for dir in [
        "boot",
        "dev",
        "etc/kubernetes",
        "lib/modules",
        "proc",
        "run",
        "sys",
        "system",
        "tmp",
        "usr/bin",
        "usr/sbin",
        "var",
    ] {
        std::fs::create_dir_all(staging.join(dir))?;
    }
    for daemon in ROOTFS_DAEMONS {
        let target = staging.join("usr/bin").join(daemon);
        install(&binaries.join(daemon), &target, 0o755)?;
    }
    for (dir, modules) in module_groups {
        let dir = staging.join(dir);
        std::fs::create_dir_all(&dir)?;
        for module in *modules {
            let name = format!("{}.ko", module.name);
            install(&module.path, &dir.join(&name), 0o644)?;
        }
        std::fs::write(dir.join("load-order"), modinfo::load_order_file(modules))?;
    }
    for program in read_list(&root.join("rootfs/host-programs.txt"))? {
        let program = PathBuf::from(program);
        let inside = staging.join(program.strip_prefix("/")?);
        std::fs::create_dir_all(inside.parent().context("program folder")?)?;
        install(&program, &inside, 0o755)?;
        for library in libraries(&program)? {
            let inside = staging.join(library.strip_prefix("/")?);
            std::fs::create_dir_all(inside.parent().context("library folder")?)?;
            install(&library, &inside, 0o755)?;
        }
    }
    install_tree(&root.join("rootfs/etc"), &staging.join("etc"))?;
    set_dir_modes(staging)?;
    Ok(())
}

/// What a node installing itself writes for GRUB, in `usr/lib/grub` of the root: Debian's
/// modules of both platforms, boot.img and the system disk's patched core.img in `i386-pc/`,
/// and the EFI system partition as a sparse image (`esp.sparse`).
fn stage_grub(staging: &Path, core_img: &Path, esp_img: &Path) -> anyhow::Result<()> {
    let target = staging.join(GRUB_ASSETS);
    disk::copy_modules(&target)?;
    let bios = target.join("i386-pc");
    install(
        &Path::new(disk::GRUB_DIR).join("boot.img"),
        &bios.join("boot.img"),
        0o644,
    )?;
    install(core_img, &bios.join("core.img"), 0o644)?;
    let sparse = esp_img.with_extension("sparse");
    std::fs::write(&sparse, bootdisk::sparse::encode(&std::fs::read(esp_img)?))?;
    install(&sparse, &target.join("esp.sparse"), 0o644)?;
    set_dir_modes(staging)
}

/// The shared libraries (and the loader) a dynamically linked program loads, as `ldd` says.
fn libraries(program: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("ldd").arg(program).output()?;
    anyhow::ensure!(output.status.success(), "ldd {} failed", program.display());
    let mut libraries: Vec<PathBuf> = String::from_utf8(output.stdout)?
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    libraries.sort();
    libraries.dedup();
    Ok(libraries)
}

/// Copies the files below `from` into `to` (mode 0644), folders included.
fn install_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            install_tree(&entry.path(), &target)?;
        } else {
            install(&entry.path(), &target, 0o644)?;
        }
    }
    Ok(())
}

pub fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn set_dir_modes(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = if dir.ends_with("tmp") { 0o1777 } else { 0o755 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            set_dir_modes(&entry.path())?;
        }
    }
    Ok(())
}

fn make_squashfs(staging: &Path, out: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(out);
    run(Command::new("mksquashfs")
        .arg(staging)
        .arg(out)
        // Uncompressed: the SquashFS lives in the (zstd) initramfs, so it is in RAM already;
        // compressing it again costs decompression under TCG at every first page read
        // (containerd took 8 s to start from an xz SquashFS, 3 s from this one).
        .args([
            "-noappend",
            "-noI",
            "-noD",
            "-noF",
            "-noX",
            "-all-root",
            "-no-xattrs",
            "-mkfs-time",
            "0",
            "-all-time",
            "0",
        ])
        .args(["-no-progress", "-quiet"]))
}

fn read_list(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn write_sums(outputs: &Outputs, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut sums = String::new();
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        sums.push_str(&format!("{}  {name}\n", sha256_hex(&read(file)?)));
    }
    std::fs::write(outputs.dir.join("SHA256SUMS"), sums)?;
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs a command, failing with its command line when it fails.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}
