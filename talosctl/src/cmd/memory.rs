//! `talosctl memory` (aliases `m`, `free`): memory usage in MB, or all of meminfo with `-v`.

use clap::Args;
use proto::machine::MemInfo;

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::output::table;

#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Display extended memory statistics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[command(flatten)]
    pub access: InsecureArgs,
}

pub fn run(args: MemoryArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        let mut nodes = Vec::new();
        for target in session.targets() {
            let reply = target.machine().memory(target.request(())?).await;
            for (node, memory) in
                target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                nodes.push((node, memory.meminfo.unwrap_or_default()));
            }
        }
        if args.verbose {
            for (node, meminfo) in &nodes {
                print!("{}", verbose(node, meminfo));
            }
        } else {
            print!("{}", summary(&nodes));
        }
        failures.finish()
    })
}

/// The `free`-style table, in MB (meminfo values are kB).
fn summary(nodes: &[(String, MemInfo)]) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|(node, m)| {
            let used = m
                .memtotal
                .saturating_sub(m.memfree)
                .saturating_sub(m.cached)
                .saturating_sub(m.buffers);
            let mut row = vec![node.clone()];
            row.extend(
                [
                    m.memtotal,
                    used,
                    m.memfree,
                    m.shmem,
                    m.buffers,
                    m.cached,
                    m.memavailable,
                ]
                .iter()
                .map(|kb| (kb / 1024).to_string()),
            );
            row
        })
        .collect();
    table(
        &[
            "NODE",
            "TOTAL",
            "USED",
            "FREE",
            "SHARED",
            "BUFFERS",
            "CACHE",
            "AVAILABLE",
        ],
        &rows,
    )
}

/// Every meminfo field under its `/proc/meminfo` name.
fn verbose(node: &str, m: &MemInfo) -> String {
    let kb = |value: u64| format!("{value} kB");
    let count = |value: u64| value.to_string();
    let fields = [
        ("MemTotal", kb(m.memtotal)),
        ("MemFree", kb(m.memfree)),
        ("MemAvailable", kb(m.memavailable)),
        ("Buffers", kb(m.buffers)),
        ("Cached", kb(m.cached)),
        ("SwapCached", kb(m.swapcached)),
        ("Active", kb(m.active)),
        ("Inactive", kb(m.inactive)),
        ("Active(anon)", kb(m.activeanon)),
        ("Inactive(anon)", kb(m.inactiveanon)),
        ("Active(file)", kb(m.activefile)),
        ("Inactive(file)", kb(m.inactivefile)),
        ("Unevictable", kb(m.unevictable)),
        ("Mlocked", kb(m.mlocked)),
        ("SwapTotal", kb(m.swaptotal)),
        ("SwapFree", kb(m.swapfree)),
        ("Dirty", kb(m.dirty)),
        ("Writeback", kb(m.writeback)),
        ("AnonPages", kb(m.anonpages)),
        ("Mapped", kb(m.mapped)),
        ("Shmem", kb(m.shmem)),
        ("Slab", kb(m.slab)),
        ("SReclaimable", kb(m.sreclaimable)),
        ("SUnreclaim", kb(m.sunreclaim)),
        ("KernelStack", kb(m.kernelstack)),
        ("PageTables", kb(m.pagetables)),
        ("NFS_Unstable", kb(m.nfsunstable)),
        ("Bounce", kb(m.bounce)),
        ("WritebackTmp", kb(m.writebacktmp)),
        ("CommitLimit", kb(m.commitlimit)),
        ("Committed_AS", kb(m.committedas)),
        ("VmallocTotal", kb(m.vmalloctotal)),
        ("VmallocUsed", kb(m.vmallocused)),
        ("VmallocChunk", kb(m.vmallocchunk)),
        ("HardwareCorrupted", kb(m.hardwarecorrupted)),
        ("AnonHugePages", kb(m.anonhugepages)),
        ("ShmemHugePages", kb(m.shmemhugepages)),
        ("ShmemPmdMapped", kb(m.shmempmdmapped)),
        ("CmaTotal", kb(m.cmatotal)),
        ("CmaFree", kb(m.cmafree)),
        ("HugePages_Total", count(m.hugepagestotal)),
        ("HugePages_Free", count(m.hugepagesfree)),
        ("HugePages_Rsvd", count(m.hugepagesrsvd)),
        ("HugePages_Surp", count(m.hugepagessurp)),
        ("Hugepagesize", kb(m.hugepagesize)),
        ("DirectMap4k", kb(m.directmap4k)),
        ("DirectMap2M", kb(m.directmap2m)),
        ("DirectMap1G", kb(m.directmap1g)),
    ];
    let mut rows = vec![vec!["NODE:".to_string(), node.to_string()]];
    rows.extend(
        fields
            .into_iter()
            .map(|(name, value)| vec![format!("{name}:"), value]),
    );
    // A key/value list: drop the header line `table` writes.
    let text = table(&["", ""], &rows);
    let body = text
        .split_once('\n')
        .map(|(_, body)| body)
        .unwrap_or_default();
    format!("{body}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meminfo() -> MemInfo {
        MemInfo {
            memtotal: 4_039_264,
            memfree: 2_048_000,
            memavailable: 3_000_000,
            buffers: 102_400,
            cached: 512_000,
            shmem: 10_240,
            hugepagestotal: 2,
            ..Default::default()
        }
    }

    #[test]
    fn summary_is_in_megabytes() {
        let text = summary(&[("10.5.0.2".to_string(), meminfo())]);
        assert_eq!(
            text,
            "NODE       TOTAL   USED   FREE   SHARED   BUFFERS   CACHE   AVAILABLE\n\
             10.5.0.2   3944    1344   2000   10       100       500     2929\n"
        );
    }

    #[test]
    fn verbose_lists_meminfo_names() {
        let text = verbose("10.5.0.2", &meminfo());
        let pad = |name: &str| " ".repeat("HardwareCorrupted:".len() - name.len() + 3);
        let node_and_total = format!(
            "NODE:{}10.5.0.2\nMemTotal:{}4039264 kB\n",
            pad("NODE:"),
            pad("MemTotal:")
        );
        assert!(text.starts_with(&node_and_total), "{text}");
        let hugepages = format!("\nHugePages_Total:{}2\n", pad("HugePages_Total:"));
        assert!(text.contains(&hugepages), "{text}");
        let last = format!("\nDirectMap1G:{}0 kB\n\n", pad("DirectMap1G:"));
        assert!(text.ends_with(&last), "{text}");
    }
}
