//! `talosctl mounts` (alias `mount`): mounted file systems with their usage.

use clap::Args;
use proto::machine::MountStat;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::output::table;

#[derive(Debug, Args)]
pub struct MountsArgs {}

pub fn run(_args: MountsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut mounts = Vec::new();
        for target in session.targets() {
            let reply = target.machine().mounts(target.request(())?).await;
            for (node, list) in target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                mounts.extend(list.stats.into_iter().map(|m| (node.clone(), m)));
            }
        }
        print!("{}", mounts_table(&mounts));
        failures.finish()
    })
}

/// Sizes in GB (10^9 bytes); mounts without a size (not statfs-able) are left out.
pub(crate) fn mounts_table(mounts: &[(String, MountStat)]) -> String {
    let gb = |bytes: u64| format!("{:.2}", bytes as f64 * 1e-9);
    let rows: Vec<Vec<String>> = mounts
        .iter()
        .filter(|(_, m)| m.size > 0)
        .map(|(node, m)| {
            let used = m.size.saturating_sub(m.available);
            let percent = 100.0 * used as f64 / m.size as f64;
            vec![
                node.clone(),
                m.filesystem.clone(),
                gb(m.size),
                gb(used),
                gb(m.available),
                format!("{percent:.2}%"),
                m.mounted_on.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NODE",
            "FILESYSTEM",
            "SIZE(GB)",
            "USED(GB)",
            "AVAILABLE(GB)",
            "PERCENT USED",
            "MOUNTED ON",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_in_gigabytes_and_percent() {
        let mounts = vec![
            (
                "10.5.0.2".to_string(),
                MountStat {
                    filesystem: "/dev/sda6".into(),
                    size: 10_000_000_000,
                    available: 7_500_000_000,
                    mounted_on: "/var".into(),
                },
            ),
            (
                "10.5.0.2".to_string(),
                MountStat {
                    filesystem: "proc".into(),
                    size: 0,
                    available: 0,
                    mounted_on: "/proc".into(),
                },
            ),
        ];
        assert_eq!(
            mounts_table(&mounts),
            "NODE       FILESYSTEM   SIZE(GB)   USED(GB)   AVAILABLE(GB)   PERCENT USED   MOUNTED ON\n\
             10.5.0.2   /dev/sda6    10.00      2.50       7.50            25.00%         /var\n"
        );
    }
}
