//! `talosctl apply-config` (alias `apply`): send a whole machine config to nodes; also the
//! apply step of `patch machineconfig` and `edit machineconfig`. As upstream, the alias also
//! reads as a verb with an object: `apply config -f …` and `apply machineconfig -f …`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use machineconfig::patch::{apply_patches, load_patches};
use proto::machine::ApplyConfigurationRequest;
use proto::machine::apply_configuration_request::Mode;

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::connection::{Session, Target, block_on};
use crate::failures::Failures;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// `config` or `machineconfig`, only after the `apply` alias
    #[arg(hide = true)]
    pub object: Option<String>,
    /// Whether the command line said `apply` rather than `apply-config` (clap does not say
    /// which alias matched; see [`crate::cli::called_as_alias`]).
    #[arg(skip)]
    pub called_as_alias: bool,
    /// The filename of the config to apply
    #[arg(short = 'f', long, required = true)]
    pub file: PathBuf,
    /// The list of config patches to apply to the local config file before sending it to the
    /// node
    #[arg(short = 'p', long)]
    pub config_patch: Vec<String>,
    #[command(flatten)]
    pub how: ApplyOptions,
    #[command(flatten)]
    pub access: InsecureArgs,
}

/// How a config is applied (shared by apply-config, patch and edit).
#[derive(Debug, Args)]
pub struct ApplyOptions {
    /// Apply config mode
    #[arg(short = 'm', long, value_enum, default_value = "auto")]
    pub mode: ApplyMode,
    /// Check how the config change will be applied in dry-run mode
    #[arg(long)]
    pub dry_run: bool,
    /// The config will be rolled back after specified timeout (if try mode is selected)
    #[arg(long, default_value = "1m0s")]
    pub timeout: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ApplyMode {
    Auto,
    NoReboot,
    Reboot,
    Staged,
    Try,
}

impl ApplyOptions {
    /// The request that applies `config` this way.
    pub fn request(&self, config: String) -> anyhow::Result<ApplyConfigurationRequest> {
        let timeout = machineconfig::parse_go_duration(&self.timeout)
            .map_err(|e| anyhow::anyhow!("--timeout {:?}: {e}", self.timeout))?;
        let mode = match self.mode {
            ApplyMode::Auto => Mode::Auto,
            ApplyMode::NoReboot => Mode::NoReboot,
            ApplyMode::Reboot => Mode::Reboot,
            ApplyMode::Staged => Mode::Staged,
            ApplyMode::Try => Mode::Try,
        };
        Ok(ApplyConfigurationRequest {
            data: config.into_bytes(),
            mode: mode as i32,
            dry_run: self.dry_run,
            try_mode_timeout: (self.mode == ApplyMode::Try)
                .then(|| prost_types::Duration::try_from(timeout))
                .transpose()
                .context("--timeout is out of range")?,
        })
    }
}

pub fn run(args: ApplyArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    check_object(args.object.as_deref(), args.called_as_alias)?;
    let mut config = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if !args.config_patch.is_empty() {
        config = apply_patches(&config, &load_patches(&args.config_patch)?)?;
    }
    let request = args.how.request(config)?;
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        let labelled = session.node_count() > 1;
        for target in session.targets() {
            send(target, request.clone(), labelled, &mut failures).await?;
        }
        failures.finish()
    })
}

/// Upstream's rule for the positional argument: `config` or `machineconfig` (any case), and
/// only when called as `apply`.
fn check_object(object: Option<&str>, called_as_alias: bool) -> anyhow::Result<()> {
    match object {
        None => Ok(()),
        Some(object) if object != "config" && !object.eq_ignore_ascii_case("machineconfig") => {
            anyhow::bail!("unknown positional argument {object}")
        }
        Some(_) if !called_as_alias => anyhow::bail!("expected no positional arguments"),
        Some(_) => Ok(()),
    }
}

/// Sends `request` to `target` and prints what each node did.
pub async fn send(
    target: &Target,
    request: ApplyConfigurationRequest,
    labelled: bool,
    failures: &mut Failures,
) -> anyhow::Result<()> {
    let reply = target
        .machine()
        .apply_configuration(target.request(request)?)
        .await;
    for (node, applied) in target.unary(reply.map(|r| r.into_inner().messages), failures) {
        for warning in &applied.warnings {
            eprintln!("{node}: warning: {warning}");
        }
        let prefix = if labelled {
            format!("{node}: ")
        } else {
            String::new()
        };
        println!("{prefix}{}", applied.mode_details);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alias_takes_config_or_machineconfig() {
        assert!(check_object(None, false).is_ok());
        assert!(check_object(None, true).is_ok());
        assert!(check_object(Some("config"), true).is_ok());
        assert!(check_object(Some("MachineConfig"), true).is_ok());
        let error = check_object(Some("config"), false).unwrap_err();
        assert_eq!(error.to_string(), "expected no positional arguments");
        let error = check_object(Some("Config"), true).unwrap_err();
        assert_eq!(error.to_string(), "unknown positional argument Config");
    }
}
