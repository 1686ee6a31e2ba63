//! `talosctl upgrade`, `rollback`, `image list|import|remove|pull` and `meta write|delete`.
//!
//! talos-rs nodes pull from no registry: `upgrade --image FILE` (an installer image layout
//! tarball, as `cargo xtask image` writes `_out/image/installer.tar`) imports the file through
//! `ImageService.Import` first, then asks for the upgrade by the imported name. A reference
//! that is not a file is passed to the node as it is (an image imported before, which a pull
//! finds on the node).

use std::path::Path;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use proto::common::{ContainerdInstance, ContainerdNamespace, Data};
use proto::machine::image_service_client::ImageServiceClient;
use proto::machine::lifecycle_service_client::LifecycleServiceClient;
use proto::machine::lifecycle_service_install_progress::Response as Progress;
use proto::machine::{
    ImageServiceImportRequest, ImageServiceListRequest, ImageServicePullRequest,
    ImageServiceRemoveRequest, InstallArtifactsSource, LifecycleServiceUpgradeRequest,
    MetaDeleteRequest, MetaWriteRequest, RebootRequest, RollbackRequest, UpgradeRequest,
    image_service_import_request, image_service_pull_response, reboot_request, upgrade_request,
};
use tokio_stream::StreamExt as _;

use crate::cli::GlobalArgs;
use crate::cmd::image_bundle;
use crate::cmd::power::{self, TrackingArgs};
use crate::connection::{Session, Target, block_on};
use crate::failures::Failures;

/// How much of the image one Import message carries.
const CHUNK_SIZE: usize = 1 << 20;

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The installer image: a reference to an image already on the node, or an image layout
    /// tarball (e.g. _out/image/installer.tar) to import first
    #[arg(short, long)]
    pub image: String,
    /// Preserve data (accepted for compatibility: an upgrade never touches STATE or EPHEMERAL)
    #[arg(short, long)]
    pub preserve: bool,
    /// Stage the upgrade to perform it after a reboot
    #[arg(short, long)]
    pub stage: bool,
    /// Force the upgrade (skip checks: installing the release the node already runs)
    #[arg(short, long)]
    pub force: bool,
    /// Select the reboot mode during upgrade
    #[arg(short = 'm', long, value_enum, default_value = "default")]
    pub reboot_mode: UpgradeRebootMode,
    /// Do not reboot the node after the upgrade (the new release boots at the next reboot)
    #[arg(long)]
    pub no_reboot: bool,
    /// Use the older MachineService.Upgrade API (implied by --stage and --force)
    #[arg(long)]
    pub legacy: bool,
    /// Drain the Kubernetes node before rebooting (accepted: talos-rs runs no Kubernetes
    /// workloads to drain)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub drain: bool,
    #[command(flatten)]
    pub tracking: TrackingArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UpgradeRebootMode {
    Default,
    Powercycle,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List the images on the node
    #[command(visible_alias = "ls")]
    List,
    /// Import an image layout tarball into the node
    Import {
        /// The tarball
        file: std::path::PathBuf,
    },
    /// Remove an image from the node
    #[command(visible_alias = "rm")]
    Remove {
        /// The image's name or digest
        image: String,
    },
    /// Pull an image into the node (needs a registry: talos-rs nodes reach none)
    Pull {
        /// The image reference
        image: String,
    },
    /// List the default system images and extensions used for Talos
    TalosBundle(image_bundle::TalosBundleArgs),
    /// List the default Kubernetes images used by Talos
    #[command(visible_alias = "default")]
    K8sBundle(image_bundle::K8sBundleArgs),
    /// Create a cache of images in OCI format into a directory
    CacheCreate(image_bundle::CacheCreateArgs),
}

#[derive(Debug, Subcommand)]
pub enum MetaCommand {
    /// Write a key-value pair to the META partition
    Write {
        /// The key (decimal or 0x-prefixed hex, e.g. 0x0c)
        key: String,
        /// The value
        value: String,
    },
    /// Delete a key from the META partition
    Delete {
        /// The key (decimal or 0x-prefixed hex)
        key: String,
    },
}

fn system_namespace() -> ContainerdInstance {
    ContainerdInstance {
        driver: 0,
        namespace: ContainerdNamespace::NsSystem as i32,
    }
}

fn images(target: &Target) -> ImageServiceClient<tonic::transport::Channel> {
    ImageServiceClient::new(target.channel())
}

/// Streams `file` to the node's system namespace; returns the imported image's name.
async fn import(target: &Target, file: &Path) -> anyhow::Result<String> {
    import_into(target, file, system_namespace()).await
}

/// Streams `file` to the node's containerd `instance`; returns the imported image's name.
pub async fn import_into(
    target: &Target,
    file: &Path,
    instance: ContainerdInstance,
) -> anyhow::Result<String> {
    let data = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let mut messages = vec![ImageServiceImportRequest {
        request: Some(image_service_import_request::Request::Containerd(instance)),
    }];
    messages.extend(
        data.chunks(CHUNK_SIZE)
            .map(|chunk| ImageServiceImportRequest {
                request: Some(image_service_import_request::Request::ImageChunk(Data {
                    metadata: None,
                    bytes: chunk.to_vec(),
                })),
            }),
    );
    let request = target.request(tokio_stream::iter(messages))?;
    let reply = images(target)
        .import(request)
        .await
        .map_err(apiclient::ApiClientError::from)
        .with_context(|| format!("importing {} into {}", file.display(), target.label()))?;
    Ok(reply.into_inner().name)
}

/// Upgrades as upstream's talosctl does from v1.13: per node the installer is imported (when
/// `--image` is a file), pulled (found in the node's store) and written by
/// `LifecycleService.Upgrade`; then every node reboots (unless `--no-reboot`), tracked as
/// `reboot` is. `--stage`, `--force`, `--legacy` or a node without the newer API take the
/// older `MachineService.Upgrade`, which reboots by itself.
pub fn upgrade(args: UpgradeArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if args.legacy || args.stage || args.force {
        return upgrade_legacy(args, global);
    }
    let written = block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        for target in session.targets().iter().flat_map(Target::per_node) {
            match write_installer(&target, &args.image).await {
                Ok(()) => {}
                Err(error) if is_unimplemented(&error) => return Ok(false),
                Err(error) => failures.report(format_args!(
                    "error from node {}: {error:#}",
                    target.label()
                )),
            }
        }
        failures.finish().map(|()| true)
    })?;
    if !written {
        eprintln!("New upgrade API is not available, falling back to legacy");
        return upgrade_legacy(args, global);
    }
    if args.no_reboot {
        return Ok(());
    }
    let mode = match args.reboot_mode {
        UpgradeRebootMode::Default => reboot_request::Mode::Default,
        UpgradeRebootMode::Powercycle => reboot_request::Mode::Powercycle,
    };
    power::run(
        power::Sequence::Reboot,
        &args.tracking,
        global,
        move |target| async move {
            let request = target.request(RebootRequest { mode: mode as i32 })?;
            let reply = target.machine().reboot(request).await;
            Ok(reply.map(|r| r.into_inner().messages))
        },
    )
}

fn is_unimplemented(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<apiclient::ApiClientError>(),
        Some(apiclient::ApiClientError::Rpc(status)) if status.code() == tonic::Code::Unimplemented
    )
}

/// Imports (when `image` is a file), pulls and installs the upgrade on one node, printing its
/// progress; fails unless the installer exits with 0.
async fn write_installer(target: &Target, image: &str) -> anyhow::Result<()> {
    let node = target.label();
    let image = if Path::new(image).is_file() {
        let name = import(target, Path::new(image)).await?;
        println!("{node}: imported {image} as {name}");
        name
    } else {
        image.to_string()
    };
    pull(target, &image).await?;
    let request = target.request(LifecycleServiceUpgradeRequest {
        containerd: Some(system_namespace()),
        source: Some(InstallArtifactsSource {
            image_name: image.clone(),
        }),
    })?;
    let mut stream = LifecycleServiceClient::new(target.channel())
        .upgrade(request)
        .await
        .map_err(apiclient::ApiClientError::from)?
        .into_inner();
    while let Some(reply) = stream.next().await {
        let reply = reply.map_err(apiclient::ApiClientError::from)?;
        match reply.progress.and_then(|p| p.response) {
            Some(Progress::Message(line)) => println!("{node}: {line}"),
            Some(Progress::ExitCode(0)) => return Ok(()),
            Some(Progress::ExitCode(code)) => {
                anyhow::bail!("upgrade failed with exit code {code}")
            }
            None => {}
        }
    }
    anyhow::bail!("the node ended the upgrade without an exit code")
}

/// Pulls `image` into the node (a talos-rs node finds it in its store), printing progress.
async fn pull(target: &Target, image: &str) -> anyhow::Result<()> {
    use image_service_pull_response::Response as Pulled;
    let node = target.label();
    let request = target.request(ImageServicePullRequest {
        containerd: Some(system_namespace()),
        image_ref: image.to_string(),
    })?;
    let mut stream = images(target)
        .pull(request)
        .await
        .map_err(apiclient::ApiClientError::from)?
        .into_inner();
    while let Some(reply) = stream.next().await {
        match reply.map_err(apiclient::ApiClientError::from)?.response {
            Some(Pulled::PullProgress(progress)) => {
                let status = progress
                    .progress
                    .map(|p| p.status().as_str_name().to_lowercase().replace('_', " "))
                    .unwrap_or_default();
                println!("{node}: {} {status}", progress.layer_id);
            }
            Some(Pulled::Name(name)) => println!("{node}: pulled {name}"),
            None => {}
        }
    }
    Ok(())
}

fn upgrade_legacy(args: UpgradeArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let reboot_mode = match args.reboot_mode {
        UpgradeRebootMode::Default => upgrade_request::RebootMode::Default,
        UpgradeRebootMode::Powercycle => upgrade_request::RebootMode::Powercycle,
    };
    let file = Path::new(&args.image).is_file().then(|| args.image.clone());
    let (preserve, stage, force, image) = (args.preserve, args.stage, args.force, args.image);
    power::run(
        power::Sequence::Upgrade { staged: stage },
        &args.tracking,
        global,
        move |target| {
            let (file, image) = (file.clone(), image.clone());
            async move {
                let image = match file {
                    Some(file) => {
                        let name = import(&target, Path::new(&file)).await?;
                        println!("{}: imported {file} as {name}", target.label());
                        name
                    }
                    None => image,
                };
                let request = target.request(UpgradeRequest {
                    image,
                    preserve,
                    stage,
                    force,
                    reboot_mode: reboot_mode as i32,
                })?;
                let reply = target.machine().upgrade(request).await;
                Ok(reply.map(|r| r.into_inner().messages))
            }
        },
    )
}

pub fn rollback(global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            let reply = target
                .machine()
                .rollback(target.request(RollbackRequest {})?)
                .await
                .map(|r| r.into_inner().messages);
            for (node, _) in target.unary(reply, &mut failures) {
                println!(
                    "{node}: rollback requested: the other slot boots once, committed when healthy"
                );
            }
        }
        failures.finish()
    })
}

pub fn image(command: ImageCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    // The client-only ones.
    match &command {
        ImageCommand::TalosBundle(args) => return image_bundle::talos_bundle(args),
        ImageCommand::K8sBundle(args) => return image_bundle::k8s_bundle(args),
        ImageCommand::CacheCreate(args) => return image_bundle::cache_create(args),
        _ => {}
    }
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        for target in session.targets().iter().flat_map(Target::per_node) {
            let node = target.label();
            let outcome: anyhow::Result<()> = async {
                match &command {
                    ImageCommand::List => {
                        let request = target.request(ImageServiceListRequest {
                            containerd: Some(system_namespace()),
                        })?;
                        let mut stream = images(&target)
                            .list(request)
                            .await
                            .map_err(apiclient::ApiClientError::from)?
                            .into_inner();
                        println!("NODE\tIMAGE\tDIGEST\tSIZE\tRELEASE");
                        while let Some(image) = stream.next().await {
                            let image = image.map_err(apiclient::ApiClientError::from)?;
                            let release = image
                                .labels
                                .get(installer::RELEASE_LABEL)
                                .cloned()
                                .unwrap_or_default();
                            println!(
                                "{node}\t{}\t{}\t{}\t{release}",
                                image.name, image.digest, image.size
                            );
                        }
                    }
                    ImageCommand::Import { file } => {
                        let name = import(&target, file).await?;
                        println!("{node}: imported {name}");
                    }
                    ImageCommand::Remove { image } => {
                        let request = target.request(ImageServiceRemoveRequest {
                            containerd: Some(system_namespace()),
                            image_ref: image.clone(),
                        })?;
                        images(&target)
                            .remove(request)
                            .await
                            .map_err(apiclient::ApiClientError::from)?;
                        println!("{node}: removed {image}");
                    }
                    ImageCommand::Pull { image } => pull(&target, image).await?,
                    ImageCommand::TalosBundle(_)
                    | ImageCommand::K8sBundle(_)
                    | ImageCommand::CacheCreate(_) => {}
                }
                Ok(())
            }
            .await;
            if let Err(error) = outcome {
                failures.report(format_args!("error from node {node}: {error:#}"));
            }
        }
        failures.finish()
    })
}

pub fn meta(command: MetaCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    let key = match &command {
        MetaCommand::Write { key, .. } | MetaCommand::Delete { key } => parse_key(key)?,
    };
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            match &command {
                MetaCommand::Write { value, .. } => {
                    let request = target.request(MetaWriteRequest {
                        key,
                        value: value.as_bytes().to_vec(),
                    })?;
                    let reply = target.machine().meta_write(request).await;
                    target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
                }
                MetaCommand::Delete { .. } => {
                    let request = target.request(MetaDeleteRequest { key })?;
                    let reply = target.machine().meta_delete(request).await;
                    target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
                }
            }
        }
        failures.finish()
    })
}

/// A META key as upstream's talosctl takes it: decimal or `0x` hex.
fn parse_key(text: &str) -> anyhow::Result<u32> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed
        .ok()
        .filter(|key| *key <= 0xff)
        .with_context(|| format!("invalid META key {text:?}: a number from 0 to 0xff"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_keys_are_decimal_or_hex_bytes() {
        assert_eq!(parse_key("0x0c").unwrap(), 12);
        assert_eq!(parse_key("12").unwrap(), 12);
        assert!(parse_key("0x100").is_err());
        assert!(parse_key("twelve").is_err());
    }
}
