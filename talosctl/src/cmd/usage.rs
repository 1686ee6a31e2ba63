//! `talosctl usage [PATH…]` (alias `du`): disk usage of paths on the node.

use clap::Args;
use proto::machine::{DiskUsageInfo, DiskUsageRequest};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::humanize::si_bytes;
use crate::output::table;

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Paths to measure
    #[arg(default_value = "/")]
    pub paths: Vec<String>,
    /// Write counts for all files, not just directories
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Maximum recursion depth
    #[arg(short = 'd', long, default_value_t = 0)]
    pub depth: i32,
    /// Threshold in bytes: exclude entries smaller than it if positive, larger if negative
    #[arg(short = 't', long, default_value_t = 0, allow_negative_numbers = true)]
    pub threshold: i64,
    /// Print sizes in human readable format
    #[arg(short = 'H', long)]
    pub humanize: bool,
}

pub fn run(args: UsageArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let request = DiskUsageRequest {
        recursion_depth: args.depth,
        all: args.all,
        threshold: args.threshold,
        paths: args.paths.clone(),
    };
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut entries = Vec::new();
        for target in session.targets() {
            let reply = target
                .machine()
                .disk_usage(target.request(request.clone())?)
                .await;
            target
                .stream(reply, &mut failures, |node, info| {
                    if info.error.is_empty() {
                        entries.push((node.to_string(), info));
                    } else {
                        eprintln!("{node}: error reading file {}: {}", info.name, info.error);
                    }
                    Ok(())
                })
                .await?;
        }
        print!("{}", usage_table(&entries, args.humanize));
        failures.finish()
    })
}

fn usage_table(entries: &[(String, DiskUsageInfo)], humanize: bool) -> String {
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|(node, info)| {
            let size = if humanize {
                si_bytes(info.size.max(0) as u64)
            } else {
                info.size.to_string()
            };
            let name = if info.relative_name.is_empty() {
                info.name.clone()
            } else {
                info.relative_name.clone()
            };
            vec![node.clone(), size, name]
        })
        .collect();
    table(&["NODE", "SIZE", "NAME"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_plain_or_humanized() {
        let entries = vec![(
            "10.5.0.2".to_string(),
            DiskUsageInfo {
                metadata: None,
                name: "/var/log".into(),
                size: 1_234_567,
                error: String::new(),
                relative_name: "log".into(),
            },
        )];
        assert_eq!(
            usage_table(&entries, false),
            "NODE       SIZE      NAME\n10.5.0.2   1234567   log\n"
        );
        assert_eq!(
            usage_table(&entries, true),
            "NODE       SIZE     NAME\n10.5.0.2   1.2 MB   log\n"
        );
    }
}
