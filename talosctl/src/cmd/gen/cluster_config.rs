//! `talosctl gen config NAME ENDPOINT`: controlplane.yaml, worker.yaml and talosconfig.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use machineconfig::annotate::annotate;
use machineconfig::generate::{self, ClusterSpec};
use machineconfig::patch::{Patch, apply_patches, load_patches};
use machineconfig::{Config, RuntimeMode};
use pki::{CLIENT_CERTIFICATE_TTL, SecretsBundle, Validity};
use talosconfig::{Context, Talosconfig};

use crate::output::FileSet;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Cluster name
    pub cluster_name: String,
    /// Cluster endpoint, e.g. https://10.5.0.2:6443
    pub cluster_endpoint: String,
    /// Use a secrets file generated using 'gen secrets'
    #[arg(long)]
    pub with_secrets: Option<PathBuf>,
    /// Patch generated machineconfigs (applied to all node types), use @file to read a patch from file
    #[arg(long)]
    pub config_patch: Vec<String>,
    /// Patch generated machineconfigs (applied to 'init' and 'controlplane' types)
    #[arg(long)]
    pub config_patch_control_plane: Vec<String>,
    /// Patch generated machineconfigs (applied to 'worker' type)
    #[arg(long)]
    pub config_patch_worker: Vec<String>,
    /// Destination to output generated files. When multiple output types are specified, it must
    /// be a directory; for a single output type it may be a file or '-' for stdout
    #[arg(short = 'o', long, visible_alias = "output-dir", default_value = ".")]
    pub output: PathBuf,
    /// Types of outputs to be generated
    #[arg(
        short = 't',
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "controlplane,worker,talosconfig"
    )]
    pub output_types: Vec<OutputType>,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
    /// Desired Kubernetes version to run
    #[arg(long, default_value = generate::DEFAULT_KUBERNETES_VERSION)]
    pub kubernetes_version: String,
    /// The disk to install to
    #[arg(long, default_value = generate::DEFAULT_INSTALL_DISK)]
    pub install_disk: String,
    /// Additional Subject-Alt-Names for the APIServer certificate
    #[arg(long, value_delimiter = ',')]
    pub additional_sans: Vec<String>,
    /// The dns domain to use for cluster
    #[arg(long, default_value = generate::DEFAULT_DNS_DOMAIN)]
    pub dns_domain: String,
    /// The desired Talos version to generate config for (backwards compatibility)
    #[arg(long, default_value = generate::DEFAULT_TALOS_VERSION)]
    pub talos_version: String,
    /// Renders all machine configs with a description of each field
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub with_docs: bool,
    /// Renders all machine configs with commented-out examples of useful fields
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub with_examples: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputType {
    Controlplane,
    Worker,
    Talosconfig,
}

impl OutputType {
    fn file_name(self) -> &'static str {
        match self {
            OutputType::Controlplane => "controlplane.yaml",
            OutputType::Worker => "worker.yaml",
            OutputType::Talosconfig => "talosconfig",
        }
    }
}

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let spec = ClusterSpec {
        kubernetes_version: args.kubernetes_version.clone(),
        talos_version: normalize_talos_version(&args.talos_version)?,
        install_disk: args.install_disk.clone(),
        additional_sans: args.additional_sans.clone(),
        dns_domain: args.dns_domain.clone(),
        ..ClusterSpec::new(&args.cluster_name, &args.cluster_endpoint)
    };
    let bundle = match &args.with_secrets {
        Some(path) => load_bundle(path)?,
        None => {
            eprintln!("generating PKI and tokens");
            SecretsBundle::generate()?
        }
    };
    let common = load_patches(&args.config_patch)?;
    let mut outputs = Vec::new();
    for &output_type in &args.output_types {
        let contents = match output_type {
            OutputType::Controlplane => {
                let specific = load_patches(&args.config_patch_control_plane)?;
                let config = generate::controlplane(&bundle, &spec)?;
                let yaml = patched(
                    "controlplane",
                    &config,
                    &[common.clone(), specific].concat(),
                    RuntimeMode::Metal,
                )?;
                annotate(&yaml, args.with_docs, args.with_examples)
            }
            OutputType::Worker => {
                let specific = load_patches(&args.config_patch_worker)?;
                let config = generate::worker(&bundle, &spec)?;
                let yaml = patched(
                    "worker",
                    &config,
                    &[common.clone(), specific].concat(),
                    RuntimeMode::Metal,
                )?;
                annotate(&yaml, args.with_docs, args.with_examples)
            }
            OutputType::Talosconfig => talosconfig(&bundle, &args.cluster_name)?.to_yaml(),
        };
        outputs.push((output_type, contents));
    }
    write_outputs(&args.output, outputs, args.force)
}

fn load_bundle(path: &Path) -> anyhow::Result<SecretsBundle> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading secrets bundle {}", path.display()))?;
    let bundle = SecretsBundle::from_yaml(&text)
        .with_context(|| format!("secrets bundle {}", path.display()))?;
    bundle
        .validate(time::OffsetDateTime::now_utc())
        .with_context(|| format!("secrets bundle {}", path.display()))?;
    Ok(bundle)
}

/// Applies the patches, decodes the result strictly and validates it, returning the YAML text.
pub(crate) fn patched(
    what: &str,
    config: &Config,
    patches: &[Patch],
    mode: RuntimeMode,
) -> anyhow::Result<String> {
    let yaml = config.to_yaml()?;
    if patches.is_empty() {
        return Ok(yaml);
    }
    let yaml = apply_patches(&yaml, patches).with_context(|| format!("patching {what} config"))?;
    let config = Config::from_yaml(&yaml).with_context(|| format!("patched {what} config"))?;
    crate::cmd::validate::check(&config, mode, false)
        .with_context(|| format!("patched {what} config"))?;
    Ok(config.to_yaml()?)
}

/// A talosconfig with one context named after the cluster and an `os:admin` client certificate.
pub(crate) fn talosconfig(
    bundle: &SecretsBundle,
    cluster_name: &str,
) -> anyhow::Result<Talosconfig> {
    let roles = ["os:admin".to_string()];
    let client =
        bundle.issue_admin_certificate(&roles, Validity::from_now(CLIENT_CERTIFICATE_TTL))?;
    let context = Context::new(
        Vec::new(),
        bundle.certs.os.crt.as_deref().unwrap_or_default(),
        client.crt.as_deref().unwrap_or_default(),
        client.key.as_deref().unwrap_or_default(),
    );
    let mut config = Talosconfig::default();
    config.add(cluster_name, context)?;
    config.use_context(cluster_name)?;
    Ok(config)
}

fn write_outputs(
    output: &Path,
    outputs: Vec<(OutputType, String)>,
    force: bool,
) -> anyhow::Result<()> {
    if output == Path::new("-") {
        let [(_, contents)] = outputs.as_slice() else {
            anyhow::bail!("output to stdout ('-o -') needs exactly one --output-types value");
        };
        print!("{contents}");
        return Ok(());
    }
    let single_file = outputs.len() == 1 && !output.is_dir() && output != Path::new(".");
    let mut files = FileSet::default();
    for (output_type, contents) in outputs {
        let path = if single_file {
            output.to_path_buf()
        } else {
            output.join(output_type.file_name())
        };
        files.add(path, contents, 0o600);
    }
    files.write(force)
}

/// `1.13` → `v1.13`; anything that is not `vMAJOR.MINOR[.PATCH…]` is refused.
pub(crate) fn normalize_talos_version(version: &str) -> anyhow::Result<String> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let mut parts = bare.split(['.', '-']);
    let mut numeric = || {
        parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    anyhow::ensure!(
        numeric() && numeric(),
        "invalid --talos-version {version:?}: expected a version like v1.13"
    );
    Ok(format!("v{bare}"))
}
