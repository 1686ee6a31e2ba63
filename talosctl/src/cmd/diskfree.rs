//! `talosctl diskfree [VOLUME]` (alias `df`): storage usage of the node's mounted volumes, in
//! upstream's columns (NODE, VOLUME, FILESYSTEM, SIZE, USED, AVAILABLE, USAGE, MOUNT POINT).
//!
//! Limits: the sizes come from `MachineService.Mounts` (upstream asks `StorageService.Statfs`
//! about each `MountStatus`), so only mounts backed by a device of their own (`/dev/…`) with a
//! size are listed, and the VOLUME column is derived from Talos's mount points (`/var`:
//! EPHEMERAL, `/system/state`: STATE, `/var/mnt/NAME`: `u-NAME`; `-` for any other). Inode
//! counts are not part of that reply: `--inodes` is refused.

use clap::Args;
use proto::machine::MountStat;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::humanize::iec_bytes;
use crate::output::table;

#[derive(Debug, Args)]
pub struct DiskfreeArgs {
    /// Only this volume (its ID, e.g. EPHEMERAL)
    pub volume: Option<String>,
    /// Print sizes in bytes rather than in human-readable format
    #[arg(short = 'b', long)]
    pub bytes: bool,
    /// List inode information instead of block usage (not available in talos-rs)
    #[arg(short = 'i', long)]
    pub inodes: bool,
}

/// One listed mount: its node, volume ID and usage.
struct Row {
    node: String,
    volume: String,
    mount: MountStat,
}

pub fn run(args: DiskfreeArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    if args.inodes {
        anyhow::bail!(
            "--inodes: inode counts are not available: the node's Mounts reply carries only sizes"
        );
    }
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut rows = Vec::new();
        for target in session.targets() {
            let reply = target.machine().mounts(target.request(())?).await;
            for (node, list) in target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                let mounts = volumes(list.stats, args.volume.as_deref());
                if mounts.is_empty()
                    && let Some(volume) = &args.volume
                {
                    failures.report(format_args!(
                        "error from node {node}: volume {volume:?} not mounted"
                    ));
                }
                rows.extend(mounts.into_iter().map(|(volume, mount)| Row {
                    node: node.clone(),
                    volume,
                    mount,
                }));
            }
        }
        print!("{}", render(&rows, args.bytes));
        failures.finish()
    })
}

/// The mounts with a filesystem of their own, with their volume IDs; only `only`'s if given.
fn volumes(mounts: Vec<MountStat>, only: Option<&str>) -> Vec<(String, MountStat)> {
    mounts
        .into_iter()
        .filter(|mount| mount.filesystem.starts_with("/dev/") && mount.size > 0)
        .map(|mount| (volume_id(&mount.mounted_on), mount))
        .filter(|(volume, _)| only.is_none_or(|only| only == volume))
        .collect()
}

/// The Talos volume mounted at `mount_point`, `-` when it is none of them.
fn volume_id(mount_point: &str) -> String {
    match mount_point {
        "/var" => "EPHEMERAL".to_owned(),
        "/system/state" => "STATE".to_owned(),
        other => match other.strip_prefix("/var/mnt/") {
            Some(name) if !name.is_empty() && !name.contains('/') => format!("u-{name}"),
            _ => "-".to_owned(),
        },
    }
}

fn render(rows: &[Row], bytes: bool) -> String {
    let size = |value: u64| {
        if bytes {
            value.to_string()
        } else {
            iec_bytes(value).replace(' ', "")
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let used = row.mount.size.saturating_sub(row.mount.available);
            vec![
                row.node.clone(),
                row.volume.clone(),
                row.mount.filesystem.clone(),
                size(row.mount.size),
                size(used),
                size(row.mount.available),
                percent(used, used + row.mount.available),
                row.mount.mounted_on.clone(),
            ]
        })
        .collect();
    table(
        &[
            "NODE",
            "VOLUME",
            "FILESYSTEM",
            "SIZE",
            "USED",
            "AVAILABLE",
            "USAGE",
            "MOUNT POINT",
        ],
        &cells,
    )
}

/// `used` of `total` in whole percent, rounded up as upstream's; `-` for an empty total.
fn percent(used: u64, total: u64) -> String {
    if total == 0 {
        return "-".to_owned();
    }
    format!("{}%", (used * 100).div_ceil(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(filesystem: &str, size: u64, available: u64, mounted_on: &str) -> MountStat {
        MountStat {
            filesystem: filesystem.into(),
            size,
            available,
            mounted_on: mounted_on.into(),
        }
    }

    fn sample() -> Vec<MountStat> {
        vec![
            mount(
                "/dev/sda6",
                10 * 1024 * 1024 * 1024,
                7 * 1024 * 1024 * 1024,
                "/var",
            ),
            mount(
                "/dev/sda5",
                100 * 1024 * 1024,
                99 * 1024 * 1024,
                "/system/state",
            ),
            mount("/dev/sdb1", 1000, 0, "/var/mnt/data"),
            mount("overlay", 5000, 100, "/"),
            mount("proc", 0, 0, "/proc"),
        ]
    }

    #[test]
    fn lists_device_backed_mounts_in_upstreams_columns() {
        let rows: Vec<Row> = volumes(sample(), None)
            .into_iter()
            .map(|(volume, mount)| Row {
                node: "10.5.0.2".into(),
                volume,
                mount,
            })
            .collect();
        assert_eq!(
            render(&rows, false),
            "NODE       VOLUME      FILESYSTEM   SIZE     USED     AVAILABLE   USAGE   MOUNT POINT\n\
             10.5.0.2   EPHEMERAL   /dev/sda6    10GiB    3.0GiB   7.0GiB      30%     /var\n\
             10.5.0.2   STATE       /dev/sda5    100MiB   1.0MiB   99MiB       1%      /system/state\n\
             10.5.0.2   u-data      /dev/sdb1    1000B    1000B    0B          100%    /var/mnt/data\n"
        );
        let in_bytes = render(&rows[..1], true);
        let cells: Vec<&str> = in_bytes
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(
            cells,
            [
                "10.5.0.2",
                "EPHEMERAL",
                "/dev/sda6",
                "10737418240",
                "3221225472",
                "7516192768",
                "30%",
                "/var"
            ]
        );
    }

    #[test]
    fn a_volume_filter_keeps_only_that_volume() {
        let only = volumes(sample(), Some("STATE"));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].1.mounted_on, "/system/state");
        assert!(volumes(sample(), Some("IMAGECACHE")).is_empty());
    }

    #[test]
    fn percent_rounds_up_and_handles_empty() {
        assert_eq!(percent(1, 3), "34%");
        assert_eq!(percent(0, 0), "-");
        assert_eq!(percent(5, 10), "50%");
    }
}
