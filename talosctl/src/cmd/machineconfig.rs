//! `talosctl machineconfig patch FILE -p PATCH… [-o OUT]`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use machineconfig::Config;
use machineconfig::patch::{apply_patches, load_patches};

use crate::output::FileSet;

#[derive(Debug, Subcommand)]
pub enum MachineconfigCommand {
    /// Patch a machine config
    Patch(PatchArgs),
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// The machine config file to patch
    pub file: PathBuf,
    /// Patch to apply, inline or @file (JSON 6902 or strategic merge); may be repeated
    #[arg(short = 'p', long = "patch", required = true)]
    pub patches: Vec<String>,
    /// Output destination; if not set, the result is printed to stdout
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

pub fn run(cmd: MachineconfigCommand) -> anyhow::Result<()> {
    let MachineconfigCommand::Patch(args) = cmd;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    // Strict decoding first, so a broken input is reported against its own lines.
    Config::from_yaml(&text).with_context(|| format!("config {}", args.file.display()))?;
    let patches = load_patches(&args.patches)?;
    let patched = apply_patches(&text, &patches)?;
    let config = Config::from_yaml(&patched).context("patched config")?;
    let yaml = config.to_yaml()?;
    match args.output {
        Some(path) => {
            let mut files = FileSet::default();
            files.add(path, yaml, 0o600);
            files.write(true)
        }
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}
