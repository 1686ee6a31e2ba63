//! `talosctl support [-O support.zip] [-n nodes]`: what a support request needs from each node,
//! in one ZIP archive laid out as upstream's (`<node>/dmesg.log`, `<node>/<service>.log` and
//! `.state`, `<node>/dependencies.dot`, `<node>/mounts`, `<node>/processes`, `<node>/summary`,
//! `<node>/talosResources/<type>.yaml`), plus `<node>/machineconfig.yaml` with every secret
//! replaced and `<node>/etcd-members` on control planes. Sensitive resources keep their
//! metadata and lose their spec (`<REDACTED>`), as upstream. Nodes are collected at once, with a
//! progress line each; what fails is listed at the end and the rest is still written.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use clap::Args;
use proto::common::ContainerDriver;
use proto::cosi::resource::meta::resource_definition_spec::Sensitivity;
use proto::machine::{DmesgRequest, EtcdMemberListRequest, LogsRequest};
use serde::Deserialize as _;

use crate::cli::GlobalArgs;
use crate::cmd::{get, inspect, mounts, processes, service};
use crate::connection::{Session, Target, block_on};
use crate::zip_archive::ZipArchive;

#[derive(Debug, Args)]
pub struct SupportArgs {
    /// Output file to write support archive to
    #[arg(short = 'O', long, default_value = "support.zip")]
    pub output: PathBuf,
    /// Overwrite the output file if it exists
    #[arg(long)]
    pub force: bool,
}

/// What the secrets of a machine config become.
const REDACTED: &str = "<REDACTED>";
/// Config keys whose values are secrets wherever they appear.
const SECRET_KEYS: [&str; 5] = [
    "key",
    "token",
    "secret",
    "secretboxEncryptionSecret",
    "aescbcEncryptionSecret",
];

pub fn run(args: SupportArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if args.output.exists() && !args.force {
        bail!(
            "{} already exists: remove it, pass --force, or choose another -O",
            args.output.display()
        );
    }
    block_on(async {
        let session = Session::open(global).await?;
        let targets: Vec<Target> = session
            .targets()
            .iter()
            .flat_map(Target::per_node)
            .collect();
        let progress = Progress::new(targets.iter().map(Target::label).collect());
        let collected =
            futures_util::future::join_all(targets.iter().enumerate().map(|(index, target)| {
                let progress = progress.clone();
                async move { collect_node(target, index, &progress).await }
            }))
            .await;
        let mut zip = ZipArchive::default();
        let mut failures = Vec::new();
        for (target, node) in targets.iter().zip(collected) {
            let label = target.label();
            for (name, contents) in node.files {
                zip.add(&format!("{label}/{name}"), &contents)?;
            }
            failures.extend(node.failures.into_iter().map(|f| format!("{label}: {f}")));
        }
        let bytes = zip.finish()?;
        atomicfile::write(&args.output, &bytes, 0o600, atomicfile::Overwrite::Allow)
            .with_context(|| format!("writing {}", args.output.display()))?;
        println!("support bundle written to {}", args.output.display());
        if !failures.is_empty() {
            eprintln!("Processed with errors:");
            for failure in &failures {
                eprintln!("\t{failure}");
            }
        }
        Ok(())
    })
}

#[derive(Default)]
struct NodeBundle {
    files: Vec<(String, Vec<u8>)>,
    failures: Vec<String>,
}

impl NodeBundle {
    fn keep(&mut self, name: &str, result: anyhow::Result<Vec<u8>>) {
        match result {
            Ok(contents) => self.files.push((name.to_string(), contents)),
            Err(error) => self.failures.push(format!("{name}: {error:#}")),
        }
    }
}

async fn collect_node(target: &Target, index: usize, progress: &Progress) -> NodeBundle {
    let mut bundle = NodeBundle::default();
    let node = target.label();
    let services = service_list(target).await;
    let definitions = get::definitions(target).await;
    let steps =
        6 + services.as_ref().map_or(0, |s| 2 * s.len()) + definitions.as_ref().map_or(0, Vec::len);
    let step = |what: &str| progress.step(index, steps, what);

    step("dmesg");
    bundle.keep("dmesg.log", dmesg(target).await);
    match services {
        Ok(services) => {
            for info in services {
                step(&format!("{} logs", info.id));
                bundle.keep(&format!("{}.log", info.id), logs(target, &info.id).await);
                step(&format!("{} state", info.id));
                let state = service::service_details(&node, &info, SystemTime::now());
                bundle.keep(&format!("{}.state", info.id), Ok(state.into_bytes()));
            }
        }
        Err(error) => bundle.failures.push(format!("services: {error:#}")),
    }
    step("controller dependencies");
    bundle.keep("dependencies.dot", dependencies(target).await);
    step("mounts");
    bundle.keep("mounts", mount_table(target).await);
    step("processes");
    bundle.keep("processes", process_table(target).await);
    step("summary");
    bundle.keep("summary", summary(target).await);
    step("etcd members");
    // Workers have no etcd: only a control plane's answer is kept.
    if let Ok(members) = etcd_members(target).await {
        bundle.files.push(("etcd-members".into(), members));
    }
    match definitions {
        Ok(definitions) => {
            for definition in definitions {
                step(&definition.resource_type);
                let name = format!("talosResources/{}.yaml", definition.resource_type);
                match resources(target, &node, &definition).await {
                    Ok(Some(text)) => bundle.files.push((name, text)),
                    Ok(None) => {}
                    Err(error) => bundle.failures.push(format!("{name}: {error:#}")),
                }
            }
        }
        Err(error) => bundle.failures.push(format!("resources: {error:#}")),
    }
    bundle.keep("machineconfig.yaml", machine_config(target).await);
    progress.done(index);
    bundle
}

async fn service_list(target: &Target) -> anyhow::Result<Vec<proto::machine::ServiceInfo>> {
    let reply = target.machine().service_list(target.request(())?).await?;
    Ok(reply
        .into_inner()
        .messages
        .into_iter()
        .flat_map(|m| m.services)
        .collect())
}

async fn dmesg(target: &Target) -> anyhow::Result<Vec<u8>> {
    let request = target.request(DmesgRequest {
        follow: false,
        tail: false,
    })?;
    let mut stream = target.machine().dmesg(request).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(data) = stream.message().await? {
        bytes.extend_from_slice(&data.bytes);
    }
    Ok(bytes)
}

async fn logs(target: &Target, id: &str) -> anyhow::Result<Vec<u8>> {
    let request = target.request(LogsRequest {
        namespace: "system".into(),
        id: id.into(),
        driver: ContainerDriver::Containerd as i32,
        follow: false,
        tail_lines: -1,
    })?;
    let mut stream = target.machine().logs(request).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(data) = stream.message().await? {
        bytes.extend_from_slice(&data.bytes);
    }
    Ok(bytes)
}

async fn dependencies(target: &Target) -> anyhow::Result<Vec<u8>> {
    let reply = target
        .inspect()
        .controller_runtime_dependencies(target.request(())?)
        .await?;
    let edges: Vec<_> = reply
        .into_inner()
        .messages
        .into_iter()
        .flat_map(|m| m.edges)
        .collect();
    Ok(inspect::dot(&edges, true).into_bytes())
}

async fn mount_table(target: &Target) -> anyhow::Result<Vec<u8>> {
    let node = target.label();
    let reply = target.machine().mounts(target.request(())?).await?;
    let mounts: Vec<_> = reply
        .into_inner()
        .messages
        .into_iter()
        .flat_map(|m| m.stats)
        .map(|m| (node.clone(), m))
        .collect();
    Ok(mounts::mounts_table(&mounts).into_bytes())
}

async fn process_table(target: &Target) -> anyhow::Result<Vec<u8>> {
    let node = target.label();
    let reply = target.machine().processes(target.request(())?).await?;
    let list: Vec<_> = reply
        .into_inner()
        .messages
        .into_iter()
        .flat_map(|m| m.processes)
        .map(|p| (node.clone(), p))
        .collect();
    Ok(processes::processes_table(list, processes::SortColumn::Rss).into_bytes())
}

async fn summary(target: &Target) -> anyhow::Result<Vec<u8>> {
    let reply = target.machine().version(target.request(())?).await?;
    let mut text = String::new();
    for message in reply.into_inner().messages {
        if let Some(version) = message.version {
            text.push_str(&format!(
                "Tag: {}\nSHA: {}\nOS/Arch: {}/{}\n",
                version.tag, version.sha, version.os, version.arch
            ));
        }
        if let Some(platform) = message.platform {
            text.push_str(&format!(
                "Platform: {}\nMode: {}\n",
                platform.name, platform.mode
            ));
        }
    }
    Ok(text.into_bytes())
}

async fn etcd_members(target: &Target) -> anyhow::Result<Vec<u8>> {
    let request = target.request(EtcdMemberListRequest::default())?;
    let reply = target.machine().etcd_member_list(request).await?;
    let mut text = String::from("ID\tHOSTNAME\tPEER URLS\tCLIENT URLS\tLEARNER\n");
    for member in reply
        .into_inner()
        .messages
        .into_iter()
        .flat_map(|m| m.members)
    {
        text.push_str(&format!(
            "{:x}\t{}\t{}\t{}\t{}\n",
            member.id,
            member.hostname,
            member.peer_urls.join(","),
            member.client_urls.join(","),
            member.is_learner
        ));
    }
    Ok(text.into_bytes())
}

/// The resources of one type as YAML documents, `None` when there are none.
async fn resources(
    target: &Target,
    node: &str,
    definition: &proto::cosi::resource::meta::ResourceDefinitionSpec,
) -> anyhow::Result<Option<Vec<u8>>> {
    let list = get::list(
        target,
        &definition.default_namespace,
        &definition.resource_type,
    )
    .await?;
    if list.is_empty() {
        return Ok(None);
    }
    let sensitive = definition.sensitivity() == Sensitivity::Sensitive;
    let mut text = String::new();
    for resource in &list {
        let mut document = get::document(node, resource)?;
        if sensitive && let Some(mapping) = document.as_mapping_mut() {
            mapping.insert("spec".into(), REDACTED.into());
        }
        text.push_str("---\n");
        text.push_str(&serde_norway::to_string(&document)?);
    }
    Ok(Some(text.into_bytes()))
}

/// The active machine config, every secret replaced.
async fn machine_config(target: &Target) -> anyhow::Result<Vec<u8>> {
    let list = get::list(target, "config", "MachineConfigs.config.talos.dev").await?;
    let resource = list.first().context("the node has no machine config")?;
    let text = resource
        .spec
        .as_ref()
        .map(|s| s.yaml_spec.as_str())
        .unwrap_or_default();
    let mut out = String::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let mut value = serde_norway::Value::deserialize(document)?;
        redact(&mut value);
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&value)?);
    }
    Ok(out.into_bytes())
}

fn redact(value: &mut serde_norway::Value) {
    match value {
        serde_norway::Value::Mapping(mapping) => {
            for (key, value) in mapping.iter_mut() {
                let secret = key.as_str().is_some_and(|k| SECRET_KEYS.contains(&k));
                if secret && !value.is_null() {
                    *value = REDACTED.into();
                } else {
                    redact(value);
                }
            }
        }
        serde_norway::Value::Sequence(items) => items.iter_mut().for_each(redact),
        serde_norway::Value::Tagged(tagged) => redact(&mut tagged.value),
        _ => {}
    }
}

/// One line per node: a bar and the current step, redrawn in place on a terminal; a line per
/// finished node otherwise.
#[derive(Clone)]
struct Progress {
    nodes: Arc<Mutex<Vec<NodeProgress>>>,
    terminal: bool,
}

struct NodeProgress {
    label: String,
    done: usize,
    total: usize,
    step: String,
}

impl Progress {
    fn new(labels: Vec<String>) -> Progress {
        let nodes = labels
            .into_iter()
            .map(|label| NodeProgress {
                label,
                done: 0,
                total: 1,
                step: String::new(),
            })
            .collect();
        let progress = Progress {
            nodes: Arc::new(Mutex::new(nodes)),
            terminal: std::io::stderr().is_terminal(),
        };
        if progress.terminal {
            progress.draw(false);
        }
        progress
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NodeProgress>> {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn step(&self, index: usize, total: usize, what: &str) {
        if let Some(node) = self.lock().get_mut(index) {
            node.done += 1;
            node.total = total.max(node.done);
            node.step = what.to_string();
        }
        if self.terminal {
            self.draw(true);
        }
    }

    fn done(&self, index: usize) {
        let line = {
            let mut nodes = self.lock();
            let Some(node) = nodes.get_mut(index) else {
                return;
            };
            node.done = node.total;
            node.step = "done".into();
            format!("{}: collected {} items", node.label, node.total)
        };
        if self.terminal {
            self.draw(true);
        } else {
            eprintln!("{line}");
        }
    }

    fn draw(&self, redraw: bool) {
        let nodes = self.lock();
        let mut out = String::new();
        if redraw {
            out.push_str(&format!("\x1b[{}A", nodes.len()));
        }
        for node in nodes.iter() {
            let filled = (node.done * 20 / node.total.max(1)).min(20);
            out.push_str(&format!(
                "\x1b[2K{}: [{}{}] {}/{} {}\n",
                node.label,
                "#".repeat(filled),
                "-".repeat(20 - filled),
                node.done,
                node.total,
                node.step
            ));
        }
        eprint!("{out}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_of_a_config_is_replaced() {
        let mut config: serde_norway::Value = serde_norway::from_str(
            "machine:\n  token: abc.def\n  ca:\n    crt: CERT\n    key: PRIVATE\ncluster:\n  secret: s3cr3t\n  token: bootstrap\n  aescbcEncryptionSecret: aesvalue\n  secretboxEncryptionSecret: boxvalue\n  serviceAccount:\n    key: savalue\n  etcd:\n    ca:\n      crt: ETCD\n      key: ETCDKEY\n  id: cluster-id\n",
        )
        .unwrap();
        redact(&mut config);
        let text = serde_norway::to_string(&config).unwrap();
        for secret in [
            "abc.def",
            "PRIVATE",
            "s3cr3t",
            "bootstrap",
            "aesvalue",
            "boxvalue",
            "savalue",
            "ETCDKEY",
        ] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        for kept in ["CERT", "ETCD", "cluster-id"] {
            assert!(text.contains(kept), "{kept} lost from {text}");
        }
    }
}
