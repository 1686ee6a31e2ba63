//! `talosctl version`: the client's version and, unless `--client`, each node's.

use clap::Args;
use proto::machine::Version;

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
    #[command(flatten)]
    pub access: InsecureArgs,
}

pub fn run(args: VersionArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let tag = concat!("v", env!("CARGO_PKG_VERSION"));
    if args.short {
        println!("Client talos-rs {tag}");
    } else {
        println!("Client:");
        println!("\tTag:         {tag}");
        println!("\tOS/Arch:     {}/{}", std::env::consts::OS, go_arch());
    }
    if args.client {
        return Ok(());
    }
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        println!("Server:");
        for target in session.targets() {
            let reply = target.machine().version(target.request(())?).await;
            let versions = target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
            for (node, version) in versions {
                print!("{}", server_block(&node, &version));
            }
        }
        failures.finish()
    })
}

/// One node's part of the `Server:` section.
fn server_block(node: &str, version: &Version) -> String {
    let info = version.version.clone().unwrap_or_default();
    let mut features = Vec::new();
    if version.features.as_ref().is_some_and(|f| f.rbac) {
        features.push("RBAC");
    }
    format!(
        "\tNODE:        {node}\n\
         \tTag:         {}\n\
         \tSHA:         {}\n\
         \tBuilt:       {}\n\
         \tGo version:  {}\n\
         \tOS/Arch:     {}/{}\n\
         \tEnabled:     {}\n",
        info.tag,
        info.sha,
        info.built,
        info.go_version,
        info.os,
        info.arch,
        features.join(", ")
    )
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
    use proto::machine::{FeaturesInfo, VersionInfo};

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
}
