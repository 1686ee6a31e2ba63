//! `talosctl validate --config F --mode M [--strict]`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use machineconfig::{Config, RuntimeMode};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The path of the config file
    #[arg(short = 'c', long, required = true)]
    pub config: PathBuf,
    /// The mode to validate the config for (valid values are metal, cloud, and container)
    #[arg(short = 'm', long, required = true)]
    pub mode: RuntimeMode,
    /// Treat validation warnings as errors
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let path = &args.config;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let config = Config::from_yaml(&text).with_context(|| format!("config {}", path.display()))?;
    check(&config, args.mode, args.strict).with_context(|| format!("config {}", path.display()))?;
    println!("{} is valid for {} mode", path.display(), args.mode);
    Ok(())
}

/// Validates `config`, printing warnings to stderr; errors list every problem with its path.
pub fn check(config: &Config, mode: RuntimeMode, strict: bool) -> anyhow::Result<()> {
    for warning in config.validate(mode, strict)? {
        eprintln!("warning: {warning}");
    }
    Ok(())
}
