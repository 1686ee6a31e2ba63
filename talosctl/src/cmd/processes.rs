//! `talosctl processes` (aliases `p`, `ps`): the process list, largest first.

use clap::{Args, ValueEnum};
use proto::machine::ProcessInfo;

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::humanize::si_bytes;
use crate::output::table;

#[derive(Debug, Args)]
pub struct ProcessesArgs {
    /// Column to sort output by
    #[arg(short = 's', long, value_enum, default_value = "rss")]
    pub sort: SortColumn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortColumn {
    /// Resident memory
    Rss,
    /// CPU time
    Cpu,
}

pub fn run(args: ProcessesArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut processes = Vec::new();
        for target in session.targets() {
            let reply = target.machine().processes(target.request(())?).await;
            for (node, list) in target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                processes.extend(list.processes.into_iter().map(|p| (node.clone(), p)));
            }
        }
        print!("{}", processes_table(processes, args.sort));
        failures.finish()
    })
}

pub(crate) fn processes_table(
    mut processes: Vec<(String, ProcessInfo)>,
    sort: SortColumn,
) -> String {
    match sort {
        SortColumn::Rss => processes.sort_by_key(|(_, p)| std::cmp::Reverse(p.resident_memory)),
        SortColumn::Cpu => processes.sort_by(|(_, a), (_, b)| b.cpu_time.total_cmp(&a.cpu_time)),
    }
    let rows: Vec<Vec<String>> = processes
        .into_iter()
        .map(|(node, p)| {
            vec![
                node,
                p.pid.to_string(),
                p.state.clone(),
                p.threads.to_string(),
                format!("{:.2}", p.cpu_time),
                si_bytes(p.virtual_memory),
                si_bytes(p.resident_memory),
                p.label.clone(),
                command_line(&p),
            ]
        })
        .collect();
    table(
        &[
            "NODE", "PID", "STATE", "THREADS", "CPU-TIME", "VIRTMEM", "RESMEM", "LABEL", "COMMAND",
        ],
        &rows,
    )
}

/// The full command line; kernel threads (no arguments) show their name in brackets, as `ps`.
fn command_line(process: &ProcessInfo) -> String {
    if !process.args.is_empty() {
        process.args.clone()
    } else if !process.executable.is_empty() {
        process.executable.clone()
    } else {
        format!("[{}]", process.command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(
        pid: i32,
        cpu_time: f64,
        rss: u64,
        args: &str,
        command: &str,
    ) -> (String, ProcessInfo) {
        (
            "10.5.0.2".to_string(),
            ProcessInfo {
                pid,
                ppid: 1,
                state: "S".into(),
                threads: 2,
                cpu_time,
                virtual_memory: rss * 2,
                resident_memory: rss,
                command: command.into(),
                executable: String::new(),
                args: args.into(),
                label: String::new(),
            },
        )
    }

    fn pids(text: &str) -> Vec<String> {
        text.lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(1).expect("pid").to_string())
            .collect()
    }

    #[test]
    fn sorted_by_rss_or_cpu() {
        let list = vec![
            process(1, 5.0, 1_000, "/sbin/init", "init"),
            process(2, 0.5, 9_000_000, "/usr/bin/containerd", "containerd"),
            process(3, 9.25, 50_000, "", "kworker/0:1"),
        ];
        assert_eq!(
            pids(&processes_table(list.clone(), SortColumn::Rss)),
            ["2", "3", "1"]
        );
        let by_cpu = processes_table(list, SortColumn::Cpu);
        assert_eq!(pids(&by_cpu), ["3", "1", "2"]);
        let kworker = by_cpu.lines().nth(1).expect("row");
        assert!(kworker.contains("9.25"), "{kworker}");
        assert!(kworker.contains("100 kB"), "{kworker}");
        assert!(kworker.ends_with("[kworker/0:1]"), "{kworker}");
        assert!(by_cpu.starts_with("NODE       PID   STATE   THREADS   CPU-TIME   VIRTMEM"));
    }
}
