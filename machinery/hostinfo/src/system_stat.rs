//! `SystemStat`: `/proc/stat`.

use proto::machine::{CpuStat, SoftIrqStat, SystemStat};

use crate::procfile::{Line, ProcFile};
use crate::{Host, HostInfoError, USER_HZ};

impl Host {
    /// Reads `/proc/stat`: CPU times (in seconds), interrupt and soft-interrupt counts, context
    /// switches, boot time and process counters.
    pub fn system_stat(&self) -> Result<SystemStat, HostInfoError> {
        let file = ProcFile::read(self.proc_path("stat"))?;
        let mut stat = SystemStat::default();
        for line in file.lines() {
            let mut words = line.text.split_whitespace();
            let Some(key) = words.next() else {
                continue;
            };
            let values: Vec<&str> = words.collect();
            match key {
                "cpu" => stat.cpu_total = Some(cpu_stat(&line, &values)?),
                _ if is_numbered_cpu(key) => stat.cpu.push(cpu_stat(&line, &values)?),
                "intr" => {
                    let mut counts = values.iter().map(|value| line.parse::<u64>("intr", value));
                    stat.irq_total = counts.next().transpose()?.unwrap_or(0);
                    stat.irq = counts.collect::<Result<_, _>>()?;
                }
                "ctxt" => stat.context_switches = line.parse_column(key, &values, 0)?,
                "btime" => stat.boot_time = line.parse_column(key, &values, 0)?,
                "processes" => stat.process_created = line.parse_column(key, &values, 0)?,
                "procs_running" => stat.process_running = line.parse_column(key, &values, 0)?,
                "procs_blocked" => stat.process_blocked = line.parse_column(key, &values, 0)?,
                "softirq" => {
                    stat.soft_irq_total = line.parse_column(key, &values, 0)?;
                    stat.soft_irq = Some(soft_irq_stat(&line, &values)?);
                }
                _ => {}
            }
        }
        Ok(stat)
    }
}

/// `cpu0`, `cpu1`, ... (but not the `cpu` total line).
fn is_numbered_cpu(key: &str) -> bool {
    key.strip_prefix("cpu")
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// One `cpu` line: ten tick counters converted to seconds.
fn cpu_stat(line: &Line<'_>, values: &[&str]) -> Result<CpuStat, HostInfoError> {
    let seconds = |field: &str, index: usize| -> Result<f64, HostInfoError> {
        // Tick counters stay far below 2^53, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        let ticks = line.parse_column(field, values, index)? as f64;
        Ok(ticks / USER_HZ)
    };
    Ok(CpuStat {
        user: seconds("user", 0)?,
        nice: seconds("nice", 1)?,
        system: seconds("system", 2)?,
        idle: seconds("idle", 3)?,
        iowait: seconds("iowait", 4)?,
        irq: seconds("irq", 5)?,
        soft_irq: seconds("softirq", 6)?,
        steal: seconds("steal", 7)?,
        guest: seconds("guest", 8)?,
        guest_nice: seconds("guest_nice", 9)?,
    })
}

/// The `softirq` line after its total: one counter per soft interrupt kind.
fn soft_irq_stat(line: &Line<'_>, values: &[&str]) -> Result<SoftIrqStat, HostInfoError> {
    Ok(SoftIrqStat {
        hi: line.parse_column("softirq HI", values, 1)?,
        timer: line.parse_column("softirq TIMER", values, 2)?,
        net_tx: line.parse_column("softirq NET_TX", values, 3)?,
        net_rx: line.parse_column("softirq NET_RX", values, 4)?,
        block: line.parse_column("softirq BLOCK", values, 5)?,
        block_io_poll: line.parse_column("softirq IRQ_POLL", values, 6)?,
        tasklet: line.parse_column("softirq TASKLET", values, 7)?,
        sched: line.parse_column("softirq SCHED", values, 8)?,
        hrtimer: line.parse_column("softirq HRTIMER", values, 9)?,
        rcu: line.parse_column("softirq RCU", values, 10)?,
    })
}
