//! `talosctl apply-config` (alias `apply`): send a whole machine config to nodes.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use machineconfig::patch::{apply_patches, load_patches};
use proto::machine::ApplyConfigurationRequest;
use proto::machine::apply_configuration_request::Mode;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The filename of the config to apply
    #[arg(short = 'f', long, required = true)]
    pub file: PathBuf,
    /// Apply config mode
    #[arg(short = 'm', long, value_enum, default_value = "auto")]
    pub mode: ApplyMode,
    /// Check how the config change will be applied in dry-run mode
    #[arg(long)]
    pub dry_run: bool,
    /// The list of config patches to apply to the local config file before sending it to the
    /// node
    #[arg(short = 'p', long)]
    pub config_patch: Vec<String>,
    /// The config will be rolled back after specified timeout (if try mode is selected)
    #[arg(long, default_value = "1m0s")]
    pub timeout: String,
    /// Apply the config using the insecure (encrypted with no auth) maintenance service
    #[arg(short = 'i', long)]
    pub insecure: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ApplyMode {
    Auto,
    NoReboot,
    Reboot,
    Staged,
    Try,
}

impl ApplyMode {
    fn wire(self) -> Mode {
        match self {
            ApplyMode::Auto => Mode::Auto,
            ApplyMode::NoReboot => Mode::NoReboot,
            ApplyMode::Reboot => Mode::Reboot,
            ApplyMode::Staged => Mode::Staged,
            ApplyMode::Try => Mode::Try,
        }
    }
}

pub fn run(args: ApplyArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut config = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if !args.config_patch.is_empty() {
        config = apply_patches(&config, &load_patches(&args.config_patch)?)?;
    }
    let timeout = machineconfig::parse_go_duration(&args.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout {:?}: {e}", args.timeout))?;
    let request = ApplyConfigurationRequest {
        data: config.into_bytes(),
        mode: args.mode.wire() as i32,
        dry_run: args.dry_run,
        try_mode_timeout: (args.mode == ApplyMode::Try)
            .then(|| prost_types::Duration::try_from(timeout))
            .transpose()
            .context("--timeout is out of range")?,
    };
    block_on(async {
        let session = Session::open(global, args.insecure).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            let reply = target
                .machine()
                .apply_configuration(target.request(request.clone())?)
                .await;
            for (node, applied) in
                target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                for warning in &applied.warnings {
                    eprintln!("{node}: warning: {warning}");
                }
                let prefix = if session.node_count() > 1 {
                    format!("{node}: ")
                } else {
                    String::new()
                };
                println!("{prefix}{}", applied.mode_details);
            }
        }
        failures.finish()
    })
}
