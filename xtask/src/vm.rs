//! `cargo xtask qemu`: builds the image and boots it in QEMU the way a person would first try
//! it, then waits (Ctrl-C stops the VM).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use qemu::{Boot, Vm, VmConfig};

use crate::bench::workspace_root;
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
}

impl QemuArgs {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut parsed = QemuArgs {
            name: "talos-rs-1".into(),
            port: 50000,
            disk: false,
            iso: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--name" => parsed.name = args.next().context("--name needs a value")?.clone(),
                "--port" => parsed.port = args.next().context("--port needs a value")?.parse()?,
                "--disk" => parsed.disk = true,
                "--iso" => parsed.iso = true,
                other => {
                    anyhow::bail!(
                        "unknown argument {other}: qemu [--name N] [--port P] [--disk | --iso]"
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
    })
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let args = QemuArgs::parse(args)?;
    let root = workspace_root();
    let outputs = image::build(&root)?;
    let mut vm_config = config(&root, &outputs, &args.name, args.port, args.disk)?;
    if args.iso {
        vm_config.boot = Boot::Iso(outputs.iso());
    }
    let mut vm = Vm::start(&vm_config)?;
    println!(
        "booting {} ({:?}), console: {}",
        vm.name,
        vm.accel,
        vm.console.display()
    );
    vm.wait_for_console(API_READY, 0, Duration::from_secs(180))?;
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
