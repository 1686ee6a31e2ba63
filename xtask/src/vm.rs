//! `cargo xtask qemu`: builds the image and boots it in QEMU the way a person would first try
//! it, then waits (Ctrl-C stops the VM); `--demo` runs talosctl against it (maintenance mode,
//! apply-config, mutual TLS) and stops it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use qemu::{Boot, UserNet, Vm, VmConfig};

use crate::bench::{cargo, release_dir, workspace_root};
use crate::boot_bench::bounded;
use crate::image::{self, Outputs};

/// The console line machined writes once apid accepts connections.
pub const API_READY: &str = "machined: apid answering on";

/// Options of `cargo xtask qemu`.
#[derive(Debug)]
pub struct QemuArgs {
    pub name: String,
    pub port: u16,
    /// Boot the disk image instead of kernel + initramfs.
    pub disk: bool,
    /// Boot the ISO instead of kernel + initramfs.
    pub iso: bool,
    /// Boot the disk image with UEFI firmware (OVMF) rather than BIOS.
    pub uefi: bool,
    /// Boot the signed UKI from the Secure Boot disk image under OVMF with Secure Boot on.
    pub secureboot: bool,
    /// Show talosctl talking to the node (maintenance, apply-config, mutual TLS), then stop.
    pub demo: bool,
}

impl QemuArgs {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut parsed = QemuArgs {
            name: "talos-rs-1".into(),
            port: 50000,
            disk: false,
            iso: false,
            uefi: false,
            secureboot: false,
            demo: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--name" => parsed.name = args.next().context("--name needs a value")?.clone(),
                "--port" => parsed.port = args.next().context("--port needs a value")?.parse()?,
                "--disk" => parsed.disk = true,
                "--iso" => parsed.iso = true,
                "--uefi" => {
                    parsed.uefi = true;
                    parsed.disk = true;
                }
                "--secureboot" => parsed.secureboot = true,
                "--demo" => parsed.demo = true,
                other => {
                    anyhow::bail!(
                        "unknown argument {other}: qemu [--name N] [--port P] [--disk | --uefi | --iso | --secureboot] [--demo]"
                    )
                }
            }
        }
        Ok(parsed)
    }
}

/// The VM configuration for the image outputs.
pub fn config(
    root: &Path,
    outputs: &Outputs,
    name: &str,
    port: u16,
    disk: bool,
) -> anyhow::Result<VmConfig> {
    let boot = if disk {
        Boot::Disk
    } else {
        Boot::Kernel {
            kernel: outputs.kernel(),
            initramfs: outputs.initramfs(),
            cmdline: std::fs::read_to_string(outputs.cmdline())?
                .trim()
                .to_string(),
        }
    };
    Ok(VmConfig {
        name: name.to_string(),
        out_dir: root.join("_out"),
        boot,
        disk: disk.then(|| outputs.disk()),
        probe_kernel: outputs.kernel(),
        memory_mib: 1024,
        api_port: port,
        network: UserNet::DEFAULT,
        host_services: Vec::new(),
    })
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let args = QemuArgs::parse(args)?;
    let root = workspace_root();
    let outputs = image::build(&root)?;
    if args.demo {
        cargo(&root, &["build", "--release", "-q", "-p", "talosctl"])?;
    }
    let mut vm_config = config(&root, &outputs, &args.name, args.port, args.disk)?;
    if args.iso {
        vm_config.boot = Boot::Iso(outputs.iso());
    }
    if args.uefi {
        vm_config.boot = Boot::UefiDisk;
    }
    if args.secureboot {
        let secure = image::secureboot::build(&outputs)?;
        vm_config.boot = Boot::SecureBoot {
            vars: secure.vars(),
            cdrom: None,
        };
        vm_config.disk = Some(secure.disk);
    }
    let mut vm = Vm::start(&vm_config)?;
    println!(
        "booting {} ({:?}), console: {}",
        vm.name,
        vm.accel,
        vm.console.display()
    );
    vm.wait_for_console(API_READY, 0, Duration::from_secs(180))?;
    if args.demo {
        return demo(&root, &vm, &args.name);
    }
    println!(
        "apid answers {:.1} s after QEMU started. Try (maintenance mode first):\n  target/release/talosctl -n 127.0.0.1:{port} version --insecure\n  target/release/talosctl gen config demo https://10.0.2.15:6443 --output-dir _out/demo\n  target/release/talosctl -n 127.0.0.1:{port} apply-config --insecure --file _out/demo/controlplane.yaml\n  target/release/talosctl --talosconfig _out/demo/talosconfig -e 127.0.0.1:{port} -n 10.0.2.15 services\nCtrl-C stops the VM (pid {}).",
        vm.started.elapsed().as_secs_f64(),
        vm.pid(),
        port = args.port,
    );
    let exit = loop {
        if let Some(status) = vm.exit_status() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("VM exited: {exit}");
    Ok(())
}

/// Runs talosctl against the VM the way a person would first try it, printing each command.
fn demo(root: &Path, vm: &Vm, name: &str) -> anyhow::Result<()> {
    let talosctl = release_dir(root).join("talosctl");
    let node = vm.api.to_string();
    let dir = root.join("_out").join(name).join("demo");
    let _ = std::fs::remove_dir_all(&dir);
    let talosconfig = dir.join("talosconfig");
    let show = |args: &[&str], retry: bool| -> anyhow::Result<()> {
        println!("\n$ talosctl {}", args.join(" "));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let output = bounded(Command::new(&talosctl).args(args))?;
            if output.status.success() {
                print!("{}", String::from_utf8_lossy(&output.stdout));
                return Ok(());
            }
            if !retry || Instant::now() > deadline {
                anyhow::bail!("{}", String::from_utf8_lossy(&output.stderr));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    let dir_text = dir.display().to_string();
    let talosconfig_text = talosconfig.display().to_string();
    let config = dir.join("controlplane.yaml").display().to_string();
    show(&["-n", &node, "version", "--insecure"], true)?;
    show(
        &[
            "gen",
            "config",
            "demo",
            "https://10.0.2.15:6443",
            "--output-dir",
            &dir_text,
        ],
        false,
    )?;
    // The guest clock starts from the RTC's whole second: let the new certificates age.
    std::thread::sleep(Duration::from_secs(2));
    show(
        &["-n", &node, "apply-config", "--insecure", "--file", &config],
        false,
    )?;
    let secure = [
        "--talosconfig",
        talosconfig_text.as_str(),
        "-e",
        node.as_str(),
        "-n",
        "10.0.2.15",
    ];
    for command in [
        &["version"][..],
        &["services"],
        &["containers"],
        &["read", "/proc/cmdline"],
        &["memory"],
    ] {
        let args: Vec<&str> = secure.iter().chain(command).copied().collect();
        show(&args, true)?;
    }
    println!("\nconsole log: {}", vm.console.display());
    Ok(())
}
