//! `talosctl version`: the client's version and, unless `--client`, each node's.

use clap::Args;
use proto::machine::{Version, VersionInfo};

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print client version only
    #[arg(long)]
    pub client: bool,
    /// Print the short version
    #[arg(long)]
    pub short: bool,
    /// Print each node's Version message as JSON, one line per node, and nothing else (hidden,
    /// as upstream's)
    #[arg(long, hide = true)]
    pub json: bool,
    #[command(flatten)]
    pub access: InsecureArgs,
}

/// The client's tag: `v` and the crate version.
const TAG: &str = concat!("v", env!("CARGO_PKG_VERSION"));

/// The name before the tag in `--short`.
const NAME: &str = "talos-rs";

pub fn run(args: VersionArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    // As upstream: `--json` prints only the servers' messages (even with `--client`).
    if !args.json {
        print!("Client:\n{}", client_block(args.short));
        if args.client {
            return Ok(());
        }
        println!("Server:");
    }
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            let reply = target.machine().version(target.request(())?).await;
            let versions = target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
            for (node, version) in versions {
                if args.json {
                    println!("{}", version_json(&version));
                } else {
                    print!("{}", server_block(&node, &version));
                }
            }
        }
        failures.finish()
    })
}

/// The lines under `Client:`: upstream's long block, or `NAME TAG` with `--short`.
fn client_block(short: bool) -> String {
    if short {
        return format!("{NAME} {TAG}\n");
    }
    let info = VersionInfo {
        tag: TAG.to_owned(),
        sha: format!("{NAME} {TAG}"),
        built: String::new(),
        go_version: String::new(),
        os: std::env::consts::OS.to_owned(),
        arch: go_arch().to_owned(),
    };
    long_block(&info)
}

/// Upstream's version template, shared by the client and every node.
fn long_block(info: &VersionInfo) -> String {
    format!(
        "\tTag:         {}\n\
         \tSHA:         {}\n\
         \tBuilt:       {}\n\
         \tGo version:  {}\n\
         \tOS/Arch:     {}/{}\n",
        info.tag, info.sha, info.built, info.go_version, info.os, info.arch
    )
}

/// One node's part of the `Server:` section.
fn server_block(node: &str, version: &Version) -> String {
    let info = version.version.clone().unwrap_or_default();
    let mut features = Vec::new();
    if version.features.as_ref().is_some_and(|f| f.rbac) {
        features.push("RBAC");
    }
    format!(
        "\tNODE:        {node}\n{}\tEnabled:     {}\n",
        long_block(&info),
        features.join(", ")
    )
}

/// A `Version` message as Go's protojson renders it: fields in number order, lowerCamelCase
/// names, unset and default scalar fields left out, set messages kept even when empty.
fn version_json(version: &Version) -> String {
    let mut top = JsonObject::default();
    if let Some(metadata) = &version.metadata {
        let mut object = JsonObject::default();
        object.string("hostname", &metadata.hostname);
        object.string("error", &metadata.error);
        if let Some(status) = &metadata.status {
            let mut status_object = JsonObject::default();
            if status.code != 0 {
                status_object.raw("code", status.code.to_string());
            }
            status_object.string("message", &status.message);
            object.raw("status", status_object.finish());
        }
        top.raw("metadata", object.finish());
    }
    if let Some(info) = &version.version {
        let mut object = JsonObject::default();
        object.string("tag", &info.tag);
        object.string("sha", &info.sha);
        object.string("built", &info.built);
        object.string("goVersion", &info.go_version);
        object.string("os", &info.os);
        object.string("arch", &info.arch);
        top.raw("version", object.finish());
    }
    if let Some(platform) = &version.platform {
        let mut object = JsonObject::default();
        object.string("name", &platform.name);
        object.string("mode", &platform.mode);
        top.raw("platform", object.finish());
    }
    if let Some(features) = &version.features {
        let mut object = JsonObject::default();
        if features.rbac {
            object.raw("rbac", "true".to_owned());
        }
        top.raw("features", object.finish());
    }
    top.finish()
}

/// A JSON object written field by field, in the order given.
#[derive(Default)]
struct JsonObject(Vec<String>);

impl JsonObject {
    /// Adds a string field unless it is empty (proto3's default).
    fn string(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.raw(key, serde_json::Value::from(value).to_string());
        }
    }

    /// Adds a field whose value is already JSON.
    fn raw(&mut self, key: &str, json: String) {
        self.0
            .push(format!("{}:{json}", serde_json::Value::from(key)));
    }

    fn finish(self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

/// Architecture names as Talos reports them (Go's naming).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::common::Metadata;
    use proto::machine::{FeaturesInfo, PlatformInfo};

    #[test]
    fn server_block_lists_the_node_and_features() {
        let version = Version {
            metadata: None,
            version: Some(VersionInfo {
                tag: "v1.14.0".into(),
                sha: "abc123".into(),
                built: String::new(),
                go_version: "rust".into(),
                os: "linux".into(),
                arch: "amd64".into(),
            }),
            platform: None,
            features: Some(FeaturesInfo { rbac: true }),
        };
        assert_eq!(
            server_block("10.5.0.2", &version),
            "\tNODE:        10.5.0.2\n\tTag:         v1.14.0\n\tSHA:         abc123\n\
             \tBuilt:       \n\tGo version:  rust\n\tOS/Arch:     linux/amd64\n\
             \tEnabled:     RBAC\n"
        );
        let without = Version {
            features: None,
            ..version
        };
        assert!(server_block("n", &without).ends_with("\tEnabled:     \n"));
    }

    #[test]
    fn client_block_is_upstreams_template_or_one_short_line() {
        let long = client_block(false);
        let labels: Vec<&str> = long
            .lines()
            .map(|line| line.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            labels,
            ["\tTag", "\tSHA", "\tBuilt", "\tGo version", "\tOS/Arch"]
        );
        assert!(
            long.starts_with(&format!("\tTag:         {TAG}\n")),
            "{long}"
        );
        assert_eq!(client_block(true), format!("talos-rs {TAG}\n"));
    }

    #[test]
    fn json_is_protojson_shaped() {
        let version = Version {
            metadata: Some(Metadata {
                hostname: "10.5.0.2".into(),
                error: String::new(),
                status: None,
            }),
            version: Some(VersionInfo {
                tag: "v1.13.0".into(),
                sha: "talos-rs \"v0.1.0\"".into(),
                built: String::new(),
                go_version: String::new(),
                os: "linux".into(),
                arch: "amd64".into(),
            }),
            platform: Some(PlatformInfo {
                name: "metal".into(),
                mode: "metal".into(),
            }),
            features: Some(FeaturesInfo { rbac: false }),
        };
        assert_eq!(
            version_json(&version),
            r#"{"metadata":{"hostname":"10.5.0.2"},"version":{"tag":"v1.13.0","sha":"talos-rs \"v0.1.0\"","os":"linux","arch":"amd64"},"platform":{"name":"metal","mode":"metal"},"features":{}}"#
        );
        assert_eq!(version_json(&Version::default()), "{}");
    }
}
