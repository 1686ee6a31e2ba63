//! `talosctl get <type> [<id>]`: resources of the COSI API, found through the node's
//! `ResourceDefinitions` (aliases, namespace, print columns), as a table, YAML or JSON.

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use proto::cosi::resource::meta::ResourceDefinitionSpec;
use proto::cosi::resource::{GetRequest, ListRequest, Resource};

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
        None => {
            let request = ListRequest {
                namespace,
                r#type: definition.resource_type.clone(),
                options: None,
            };
            let mut stream = client
                .list(target.request(request)?)
                .await
                .map_err(rpc)?
                .into_inner();
            let mut resources = Vec::new();
            while let Some(reply) = stream.message().await.map_err(rpc)? {
                resources.extend(reply.resource);
            }
            resources
        }
    };
    Ok((definition, resources))
}

/// The definition whose type or alias is `name` (case-insensitive).
async fn resolve(target: &Target, name: &str) -> anyhow::Result<ResourceDefinitionSpec> {
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
    let wanted = name.to_ascii_lowercase();
    while let Some(reply) = stream.message().await.map_err(rpc)? {
        let Some(spec) = reply.resource.and_then(|r| r.spec) else {
            continue;
        };
        let definition = <ResourceDefinitionSpec as prost::Message>::decode(&spec.proto_spec[..])
            .context("decoding a resource definition")?;
        if definition.resource_type.to_ascii_lowercase() == wanted
            || definition.all_aliases.contains(&wanted)
        {
            return Ok(definition);
        }
    }
    bail!("resource type {name:?} is not registered")
}

fn rpc(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
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
                text.push_str(&serde_yaml::to_string(&document(node, resource)?)?);
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
fn document(node: &str, resource: &Resource) -> anyhow::Result<serde_yaml::Value> {
    let metadata = resource.metadata.clone().unwrap_or_default();
    let spec = resource
        .spec
        .as_ref()
        .map(|s| s.yaml_spec.as_str())
        .unwrap_or_default();
    // A spec of several documents (a multi-document machine config) is printed as its text.
    let spec: serde_yaml::Value =
        serde_yaml::from_str(spec).unwrap_or_else(|_| serde_yaml::Value::String(spec.to_string()));
    let mut meta = serde_yaml::Mapping::new();
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
    let mut document = serde_yaml::Mapping::new();
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
            let spec: serde_yaml::Value = resource
                .spec
                .as_ref()
                .and_then(|s| serde_yaml::from_str(&s.yaml_spec).ok())
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
fn column_value(spec: &serde_yaml::Value, json_path: &str) -> String {
    let path = json_path.trim_start_matches('{').trim_end_matches('}');
    let mut value = spec;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        value = &value[key];
    }
    match value {
        serde_yaml::Value::Null => String::new(),
        serde_yaml::Value::String(text) => text.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_read_scalars_and_lists_from_the_spec() {
        let spec: serde_yaml::Value =
            serde_yaml::from_str("address: 10.0.0.2/24\nlink:\n  mtu: 1500\ndns: [1.1.1.1]\n")
                .expect("yaml");
        assert_eq!(column_value(&spec, "{.address}"), "10.0.0.2/24");
        assert_eq!(column_value(&spec, "{.link.mtu}"), "1500");
        assert_eq!(column_value(&spec, "{.dns}"), "[\"1.1.1.1\"]");
        assert_eq!(column_value(&spec, "{.missing}"), "");
    }
}
