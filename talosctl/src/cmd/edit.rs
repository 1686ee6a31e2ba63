//! `talosctl patch machineconfig` and `talosctl edit machineconfig`: read each node's active
//! config through the resource API, change it (patches, or $EDITOR), and apply it back.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use machineconfig::patch::{apply_patches, load_patches};
use proto::cosi::resource::GetRequest;

use crate::cli::GlobalArgs;
use crate::cmd::apply::{ApplyOptions, send};
use crate::connection::{Session, Target, block_on};
use crate::failures::Failures;

/// The resource types these commands handle.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ResourceType {
    #[value(alias = "machineconfigs", alias = "mc")]
    Machineconfig,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Resource type
    #[arg(value_enum)]
    pub resource: ResourceType,
    /// The patch to apply (JSON 6902 or strategic merge), inline or @file; may be repeated
    #[arg(short = 'p', long = "patch")]
    pub patches: Vec<String>,
    /// A file holding a patch
    #[arg(long)]
    pub patch_file: Option<PathBuf>,
    #[command(flatten)]
    pub how: ApplyOptions,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Resource type
    #[arg(value_enum)]
    pub resource: ResourceType,
    #[command(flatten)]
    pub how: ApplyOptions,
}

pub fn patch(args: PatchArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut sources = args.patches.clone();
    if let Some(file) = &args.patch_file {
        sources.push(format!("@{}", file.display()));
    }
    anyhow::ensure!(
        !sources.is_empty(),
        "no patch given: use --patch or --patch-file"
    );
    let patches = load_patches(&sources)?;
    for_each_config(global, &args.how, |_, config| {
        Ok(Some(apply_patches(&config, &patches)?))
    })
}

pub fn edit(args: EditArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    for_each_config(global, &args.how, |node, config| {
        let edited = run_editor(node, &config)?;
        if edited == config {
            eprintln!("{node}: edit cancelled, no changes made");
            return Ok(None);
        }
        Ok(Some(edited))
    })
}

/// Reads every node's active config, lets `change` turn it into a new one (`None`: leave it),
/// and applies the result.
fn for_each_config(
    global: &GlobalArgs,
    how: &ApplyOptions,
    mut change: impl FnMut(&str, String) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        let labelled = session.node_count() > 1;
        let mut failures = Failures::default();
        for target in session.targets().iter().flat_map(Target::per_node) {
            let node = target.label();
            let config = match active_config(&target).await {
                Ok(config) => config,
                Err(error) => {
                    failures.report(format!("error from node {node}: {error:#}"));
                    continue;
                }
            };
            if let Some(new) = change(&node, config)? {
                send(&target, how.request(new)?, labelled, &mut failures).await?;
            }
        }
        failures.finish()
    })
}

pub(crate) async fn active_config(target: &Target) -> anyhow::Result<String> {
    let request = GetRequest {
        namespace: "config".into(),
        r#type: "MachineConfigs.config.talos.dev".into(),
        id: "v1alpha1".into(),
        options: None,
    };
    let response = target
        .resources()
        .get(target.request(request)?)
        .await
        .map_err(apiclient::ApiClientError::from)?;
    response
        .into_inner()
        .resource
        .and_then(|r| r.spec)
        .map(|spec| spec.yaml_spec)
        .context("the node returned no machine config")
}

/// Opens `config` in `$EDITOR` (default `vi`) and returns what was saved.
fn run_editor(node: &str, config: &str) -> anyhow::Result<String> {
    let file = tempfile::Builder::new()
        .prefix(&format!("talos-{node}-"))
        .suffix(".yaml")
        .tempfile()?;
    std::fs::write(file.path(), config)?;
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    let mut words = editor.split_whitespace();
    let program = words.next().context("$EDITOR is empty")?;
    let status = std::process::Command::new(program)
        .args(words)
        .arg(file.path())
        .status()
        .with_context(|| format!("running the editor {editor:?}"))?;
    anyhow::ensure!(status.success(), "the editor {editor:?} failed: {status}");
    Ok(std::fs::read_to_string(file.path())?)
}
