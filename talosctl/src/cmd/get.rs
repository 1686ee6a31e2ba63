//! `talosctl get <type> [<id>]`: resources of the COSI API, found through the node's
//! `ResourceDefinitions` (aliases, namespace, print columns), as a table, YAML or JSON.
//! `-w/--watch` prints the current resources, then every change as it happens (table: a `*`
//! column with `+` created, ` ` updated, `-` destroyed; YAML and JSON: an `event` field).

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use proto::cosi::resource::meta::ResourceDefinitionSpec;
use proto::cosi::resource::{
    EventType, GetRequest, ListRequest, Resource, WatchOptions, WatchRequest,
};

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::connection::{Session, Target, block_on};
use crate::failures::Failures;
use crate::output::table;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Resource type (a name or an alias, e.g. `addresses`, `rd`)
    pub resource_type: String,
    /// Resource id
    pub id: Option<String>,
    /// Namespace (default: the type's)
    #[arg(long)]
    pub namespace: Option<String>,
    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Watch the resources: print the current ones, then every change
    #[arg(short = 'w', long)]
    pub watch: bool,
    #[command(flatten)]
    pub access: InsecureArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Yaml,
    Json,
}

pub fn run(args: GetArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        if args.watch {
            return watch(&session, &args).await;
        }
        let mut failures = Failures::default();
        let mut found: Vec<(String, ResourceDefinitionSpec, Resource)> = Vec::new();
        for target in session.targets().iter().flat_map(Target::per_node) {
            let node = target.label();
            match fetch(&target, &args).await {
                Ok((definition, resources)) => found.extend(
                    resources
                        .into_iter()
                        .map(|r| (node.clone(), definition.clone(), r)),
                ),
                Err(error) => failures.report(format!("error from node {node}: {error:#}")),
            }
        }
        print!("{}", render(&found, args.output)?);
        failures.finish()
    })
}

async fn fetch(
    target: &Target,
    args: &GetArgs,
) -> anyhow::Result<(ResourceDefinitionSpec, Vec<Resource>)> {
    let definition = resolve(target, &args.resource_type).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| definition.default_namespace.clone());
    let mut client = target.resources();
    let resources = match &args.id {
        Some(id) => {
            let request = GetRequest {
                namespace,
                r#type: definition.resource_type.clone(),
                id: id.clone(),
                options: None,
            };
            let reply = client.get(target.request(request)?).await.map_err(rpc)?;
            reply.into_inner().resource.into_iter().collect()
        }
        None => list(target, &namespace, &definition.resource_type).await?,
    };
    Ok((definition, resources))
}

/// Follows every node's watch until interrupted; the nodes' events interleave as they come.
async fn watch(session: &Session, args: &GetArgs) -> anyhow::Result<()> {
    let (sender, mut events) = tokio::sync::mpsc::channel(64);
    for target in session.targets().iter().flat_map(Target::per_node) {
        let sender = sender.clone();
        let resource_type = args.resource_type.clone();
        let namespace = args.namespace.clone();
        let id = args.id.clone();
        tokio::spawn(async move {
            let node = target.label();
            if let Err(error) = follow(&target, &node, resource_type, namespace, id, &sender).await
            {
                let _ = sender
                    .send(Err(format!("error from node {node}: {error:#}")))
                    .await;
            }
        });
    }
    drop(sender);
    let mut header_printed = false;
    let mut failures = Failures::default();
    while let Some(event) = events.recv().await {
        match event {
            Ok((node, definition, kind, resource)) => {
                print!(
                    "{}",
                    render_event(
                        &node,
                        &definition,
                        kind,
                        &resource,
                        args.output,
                        !header_printed
                    )?
                );
                header_printed = true;
            }
            Err(error) => failures.report(error),
        }
    }
    failures.finish()
}

type WatchedEvent = Result<(String, ResourceDefinitionSpec, EventType, Resource), String>;

async fn follow(
    target: &Target,
    node: &str,
    resource_type: String,
    namespace: Option<String>,
    id: Option<String>,
    sender: &tokio::sync::mpsc::Sender<WatchedEvent>,
) -> anyhow::Result<()> {
    let definition = resolve(target, &resource_type).await?;
    let request = WatchRequest {
        namespace: namespace.unwrap_or_else(|| definition.default_namespace.clone()),
        r#type: definition.resource_type.clone(),
        id,
        options: Some(WatchOptions {
            bootstrap_contents: true,
            ..WatchOptions::default()
        }),
        api_version: 1,
    };
    let mut stream = target
        .resources()
        .watch(target.request(request)?)
        .await
        .map_err(rpc)?
        .into_inner();
    while let Some(reply) = stream.message().await.map_err(rpc)? {
        for event in reply.event {
            let kind = event.event_type();
            let Some(resource) = event.resource else {
                continue;
            };
            let watched = Ok((node.to_string(), definition.clone(), kind, resource));
            if sender.send(watched).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// One watch event: a table row (after the header, the first time), or a YAML or JSON document.
fn render_event(
    node: &str,
    definition: &ResourceDefinitionSpec,
    kind: EventType,
    resource: &Resource,
    format: Format,
    with_header: bool,
) -> anyhow::Result<String> {
    let (mark, name) = match kind {
        EventType::Created => ("+", "created"),
        EventType::Destroyed => ("-", "destroyed"),
        _ => (" ", "updated"),
    };
    match format {
        Format::Table => {
            let found = [(node.to_string(), definition.clone(), resource.clone())];
            let text = render_table(&found);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let row = lines.next().unwrap_or_default();
            let mut out = String::new();
            if with_header {
                out.push_str(&format!("*   {header}\n"));
            }
            out.push_str(&format!("{mark}   {row}\n"));
            Ok(out)
        }
        Format::Yaml | Format::Json => {
            let mut document = document(node, resource)?;
            if let serde_norway::Value::Mapping(map) = &mut document {
                map.insert("event".into(), name.into());
            }
            Ok(match format {
                Format::Json => format!("{}\n", serde_json::to_string(&document)?),
                _ => format!("---\n{}", serde_norway::to_string(&document)?),
            })
        }
    }
}

/// The definition whose type or alias is `name` (case-insensitive).
async fn resolve(target: &Target, name: &str) -> anyhow::Result<ResourceDefinitionSpec> {
    let wanted = name.to_ascii_lowercase();
    definitions(target)
        .await?
        .into_iter()
        .find(|definition| {
            definition.resource_type.to_ascii_lowercase() == wanted
                || definition.all_aliases.contains(&wanted)
        })
        .with_context(|| format!("resource type {name:?} is not registered"))
}

/// Every resource definition the node serves.
pub(crate) async fn definitions(target: &Target) -> anyhow::Result<Vec<ResourceDefinitionSpec>> {
    let request = ListRequest {
        namespace: "meta".into(),
        r#type: "ResourceDefinitions.meta.cosi.dev".into(),
        options: None,
    };
    let mut client = target.resources();
    let mut stream = client
        .list(target.request(request)?)
        .await
        .map_err(rpc)?
        .into_inner();
    let mut definitions = Vec::new();
    while let Some(reply) = stream.message().await.map_err(rpc)? {
        let Some(spec) = reply.resource.and_then(|r| r.spec) else {
            continue;
        };
        definitions.push(
            <ResourceDefinitionSpec as prost::Message>::decode(&spec.proto_spec[..])
                .context("decoding a resource definition")?,
        );
    }
    Ok(definitions)
}

/// Every resource of `resource_type` in `namespace`.
pub(crate) async fn list(
    target: &Target,
    namespace: &str,
    resource_type: &str,
) -> anyhow::Result<Vec<Resource>> {
    let request = ListRequest {
        namespace: namespace.to_string(),
        r#type: resource_type.to_string(),
        options: None,
    };
    let mut stream = target
        .resources()
        .list(target.request(request)?)
        .await
        .map_err(rpc)?
        .into_inner();
    let mut resources = Vec::new();
    while let Some(reply) = stream.message().await.map_err(rpc)? {
        resources.extend(reply.resource);
    }
    Ok(resources)
}

fn rpc(status: tonic::Status) -> anyhow::Error {
    apiclient::ApiClientError::from(status).into()
}

fn render(
    found: &[(String, ResourceDefinitionSpec, Resource)],
    format: Format,
) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(render_table(found)),
        Format::Yaml => {
            let mut text = String::new();
            for (node, _, resource) in found {
                text.push_str("---\n");
                text.push_str(&serde_norway::to_string(&document(node, resource)?)?);
            }
            Ok(text)
        }
        Format::Json => {
            let mut text = String::new();
            for (node, _, resource) in found {
                let json = serde_json::to_string_pretty(&document(node, resource)?)?;
                text.push_str(&json);
                text.push('\n');
            }
            Ok(text)
        }
    }
}

/// `node`, `metadata` and `spec` of one resource, as upstream prints them.
pub(crate) fn document(node: &str, resource: &Resource) -> anyhow::Result<serde_norway::Value> {
    let metadata = resource.metadata.clone().unwrap_or_default();
    let spec = resource
        .spec
        .as_ref()
        .map(|s| s.yaml_spec.as_str())
        .unwrap_or_default();
    // A spec of several documents (a multi-document machine config) is printed as its text.
    let spec: serde_norway::Value = serde_norway::from_str(spec)
        .unwrap_or_else(|_| serde_norway::Value::String(spec.to_string()));
    let mut meta = serde_norway::Mapping::new();
    for (key, value) in [
        ("namespace", metadata.namespace),
        ("type", metadata.r#type),
        ("id", metadata.id),
        ("version", metadata.version),
        ("owner", metadata.owner),
        ("phase", metadata.phase),
    ] {
        meta.insert(key.into(), value.into());
    }
    let mut document = serde_norway::Mapping::new();
    document.insert("node".into(), node.into());
    document.insert("metadata".into(), meta.into());
    document.insert("spec".into(), spec);
    Ok(document.into())
}

fn render_table(found: &[(String, ResourceDefinitionSpec, Resource)]) -> String {
    let Some((_, definition, _)) = found.first() else {
        return String::new();
    };
    let mut header = vec!["NODE", "NAMESPACE", "TYPE", "ID", "VERSION"];
    header.extend(definition.print_columns.iter().map(|c| c.name.as_str()));
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|(node, definition, resource)| {
            let metadata = resource.metadata.clone().unwrap_or_default();
            let spec: serde_norway::Value = resource
                .spec
                .as_ref()
                .and_then(|s| serde_norway::from_str(&s.yaml_spec).ok())
                .unwrap_or_default();
            let mut row = vec![
                node.clone(),
                metadata.namespace,
                definition.display_type.clone(),
                metadata.id,
                metadata.version,
            ];
            row.extend(
                definition
                    .print_columns
                    .iter()
                    .map(|c| column_value(&spec, &c.json_path)),
            );
            row
        })
        .collect();
    table(&header, &rows)
}

/// The value at a `{.a.b}` path of `spec`: scalars as text, lists as `["x","y"]`.
fn column_value(spec: &serde_norway::Value, json_path: &str) -> String {
    let path = json_path.trim_start_matches('{').trim_end_matches('}');
    let mut value = spec;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        value = &value[key];
    }
    match value {
        serde_norway::Value::Null => String::new(),
        serde_norway::Value::String(text) => text.clone(),
        serde_norway::Value::Bool(b) => b.to_string(),
        serde_norway::Value::Number(n) => n.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_read_scalars_and_lists_from_the_spec() {
        let spec: serde_norway::Value =
            serde_norway::from_str("address: 10.0.0.2/24\nlink:\n  mtu: 1500\ndns: [1.1.1.1]\n")
                .expect("yaml");
        assert_eq!(column_value(&spec, "{.address}"), "10.0.0.2/24");
        assert_eq!(column_value(&spec, "{.link.mtu}"), "1500");
        assert_eq!(column_value(&spec, "{.dns}"), "[\"1.1.1.1\"]");
        assert_eq!(column_value(&spec, "{.missing}"), "");
    }
}
