//! `talosctl cgroups` (alias `cg`): the node's cgroup v2 tree with a preset's (or a schema
//! file's) columns, read through the file API (`List` and `Read` under `/sys/fs/cgroup`).
//! Processes are named through `Processes`, block devices through `/sys/dev/block`.

mod schema;
mod tree;

use clap::Args;
use futures_util::StreamExt as _;
use proto::machine::list_request::Type as FileType;
use proto::machine::{ListRequest, ReadRequest};

use crate::cli::GlobalArgs;
use crate::connection::{Session, Target, block_on};
use crate::output::table;
use schema::{Names, PRESETS, Schema};
use tree::Node;

/// Where the node's cgroup v2 tree is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Files read at once.
const READS_IN_FLIGHT: usize = 16;

#[derive(Debug, Args)]
pub struct CgroupsArgs {
    /// Preset name (one of: cpu, cpuset, io, memory, process, psi, swap)
    #[arg(long, conflicts_with = "schema_file", value_parser = clap::builder::PossibleValuesParser::new(PRESETS))]
    pub preset: Option<String>,
    /// Path to the columns schema file
    #[arg(long)]
    pub schema_file: Option<std::path::PathBuf>,
}

pub fn run(args: CgroupsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let schema = match (&args.preset, &args.schema_file) {
        (Some(preset), _) => Schema::preset(preset)?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("error opening schema file: {e}"))?;
            Schema::from_yaml(&text)
                .map_err(|e| anyhow::anyhow!("error decoding schema file: {e}"))?
        }
        (None, None) => anyhow::bail!("either schema file or preset must be specified"),
    };
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("cgroups")?;
        let Some(target) = session.targets().first() else {
            anyhow::bail!("no node to ask");
        };
        let tree = read_tree(target, &schema).await?;
        let names = Names {
            processes: if schema.names_processes() {
                process_names(target).await
            } else {
                Default::default()
            },
            devices: if schema.names_devices() {
                device_names(target).await
            } else {
                Default::default()
            },
        };
        let mut header = vec!["NAME"];
        header.extend(schema.header());
        print!("{}", table(&header, &tree.rows(&schema, &names)));
        Ok(())
    })
}

/// Lists the tree under [`CGROUP_ROOT`], then reads the files the schema needs where they exist.
async fn read_tree(target: &Target, schema: &Schema) -> anyhow::Result<Node> {
    let wanted = schema.files();
    let request = ListRequest {
        root: CGROUP_ROOT.to_string(),
        recurse: true,
        recursion_depth: 0,
        types: vec![FileType::Directory as i32, FileType::Regular as i32],
        report_xattrs: false,
    };
    let mut listing = target
        .machine()
        .list(target.request(request)?)
        .await
        .map_err(|status| anyhow::anyhow!("error listing {CGROUP_ROOT}: {}", status.message()))?
        .into_inner();
    let mut tree = Node::default();
    let mut files = Vec::new();
    while let Some(info) = listing
        .message()
        .await
        .map_err(|status| anyhow::anyhow!("error listing {CGROUP_ROOT}: {}", status.message()))?
    {
        if let Some(metadata) = info.metadata.as_ref().filter(|m| !m.error.is_empty()) {
            anyhow::bail!("error listing {CGROUP_ROOT}: {}", metadata.error);
        }
        if !info.error.is_empty() {
            if info.relative_name == "." {
                anyhow::bail!("error listing {CGROUP_ROOT}: {}", info.error);
            }
            continue;
        }
        if info.is_dir {
            tree.entry(&info.relative_name);
            continue;
        }
        let (directory, file) = info
            .relative_name
            .rsplit_once('/')
            .unwrap_or((".", info.relative_name.as_str()));
        if wanted.contains(file) {
            files.push((directory.to_string(), file.to_string(), info.name));
        }
    }
    let contents: Vec<_> = futures_util::stream::iter(files)
        .map(|(directory, file, path)| async move {
            let text = read_file(target, path).await;
            (directory, file, text)
        })
        .buffer_unordered(READS_IN_FLIGHT)
        .collect()
        .await;
    for (directory, file, text) in contents {
        // A file that went away or cannot be read shows as missing.
        if let Some(text) = text {
            tree.entry(&directory).set_file(&file, text);
        }
    }
    Ok(tree)
}

/// A file's text, or `None` when the node cannot give it.
async fn read_file(target: &Target, path: String) -> Option<String> {
    let request = target.request(ReadRequest { path }).ok()?;
    let mut stream = target.machine().read(request).await.ok()?.into_inner();
    let mut bytes = Vec::new();
    while let Some(data) = stream.message().await.ok()? {
        if data.metadata.as_ref().is_some_and(|m| !m.error.is_empty()) {
            return None;
        }
        bytes.extend_from_slice(&data.bytes);
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Process names by pid, as upstream names them (the executable's, command's or first
/// argument's base name); empty (pids shown) when the node does not answer.
async fn process_names(target: &Target) -> std::collections::BTreeMap<String, String> {
    let reply = match target.request(()) {
        Ok(request) => target.machine().processes(request).await,
        Err(error) => {
            eprintln!("warning: error getting processes: {error}");
            return Default::default();
        }
    };
    let reply = match reply {
        Ok(reply) => reply.into_inner(),
        Err(status) => {
            eprintln!("warning: error getting processes: {}", status.message());
            return Default::default();
        }
    };
    reply
        .messages
        .into_iter()
        .flat_map(|m| m.processes)
        .map(|p| {
            let name = [p.executable.as_str(), p.command.as_str()]
                .into_iter()
                .find(|n| !n.is_empty())
                .or_else(|| p.args.split_whitespace().next())
                .unwrap_or_default();
            let name = name.rsplit('/').next().unwrap_or(name);
            (p.pid.to_string(), name.to_string())
        })
        .collect()
}

/// Block device names by `MAJOR:MINOR`, from the links in `/sys/dev/block`.
async fn device_names(target: &Target) -> std::collections::BTreeMap<String, String> {
    let request = ListRequest {
        root: "/sys/dev/block".to_string(),
        ..ListRequest::default()
    };
    let Ok(request) = target.request(request) else {
        return Default::default();
    };
    let Ok(reply) = target.machine().list(request).await else {
        return Default::default();
    };
    let mut stream = reply.into_inner();
    let mut names = std::collections::BTreeMap::new();
    while let Ok(Some(info)) = stream.message().await {
        if let Some(device) = info.link.rsplit('/').next().filter(|d| !d.is_empty()) {
            names.insert(info.relative_name.clone(), device.to_string());
        }
    }
    names
}
