//! What the dashboard knows about one node: the last answer of each kind of request, turned into
//! plain rows, and the history the graphs draw. Everything here is pure (no I/O): the fetchers
//! call the `apply_*` methods with what a node answered, and the views read the fields.
//!
//! Nothing a node sends can make this panic: missing messages and fields read as empty, counters
//! that go backwards (a reboot) restart the rates instead of underflowing, and a YAML spec that
//! does not parse leaves its row's fields empty.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use proto::machine::{
    CpuStat, LoadAvg, MemInfo, NetworkDeviceStats, ProcessInfo, ServiceInfo, SystemStat, Version,
};

/// How many samples the graphs keep (at the default 3 s, six minutes).
pub const HISTORY: usize = 120;

/// How many log lines are kept per node.
pub const LOG_LINES: usize = 1000;

/// The kinds of request polled per node, as named in the header's errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Version,
    SystemStat,
    Memory,
    LoadAvg,
    Processes,
    Services,
    NetworkStats,
    MachineStatus,
    Hostname,
    Addresses,
    Links,
    Routes,
    Resolvers,
    Logs,
    Dmesg,
}

impl Kind {
    /// The name shown with an error.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Version => "version",
            Kind::SystemStat => "system stat",
            Kind::Memory => "memory",
            Kind::LoadAvg => "load average",
            Kind::Processes => "processes",
            Kind::Services => "services",
            Kind::NetworkStats => "network stats",
            Kind::MachineStatus => "machine status",
            Kind::Hostname => "hostname",
            Kind::Addresses => "addresses",
            Kind::Links => "links",
            Kind::Routes => "routes",
            Kind::Resolvers => "resolvers",
            Kind::Logs => "logs",
            Kind::Dmesg => "dmesg",
        }
    }
}

/// A bounded series of samples, oldest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History(VecDeque<f64>);

impl History {
    pub fn push(&mut self, value: f64) {
        if self.0.len() == HISTORY {
            self.0.pop_front();
        }
        self.0.push_back(value);
    }

    pub fn last(&self) -> Option<f64> {
        self.0.back().copied()
    }

    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Talos's version and platform (`Version`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VersionRow {
    pub tag: String,
    pub arch: String,
    pub platform: String,
}

/// The machine stage and readiness (`MachineStatuses.runtime.talos.dev/machine`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MachineRow {
    pub stage: String,
    pub ready: bool,
    /// `name: reason` of each unmet condition.
    pub unmet: Vec<String>,
}

/// CPU time shares of the last interval, in percent of all CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuShares {
    pub user: f64,
    pub system: f64,
    pub iowait: f64,
    pub idle: f64,
    pub other: f64,
}

impl CpuShares {
    /// Everything but idle and iowait.
    pub fn busy(&self) -> f64 {
        self.user + self.system + self.other
    }
}

/// Memory in kB, as `/proc/meminfo`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryRow {
    pub total: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemoryRow {
    /// Used memory: what is not available.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }

    pub fn used_percent(&self) -> f64 {
        percent(self.used() as f64, self.total as f64)
    }
}

/// One process, with its CPU share of the last interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessRow {
    pub pid: i32,
    pub state: String,
    pub threads: i32,
    pub cpu_percent: f64,
    pub cpu_time: f64,
    pub virtual_memory: u64,
    pub resident_memory: u64,
    pub command: String,
}

/// One service of `ServiceList`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceRow {
    pub id: String,
    pub state: String,
    /// `OK`, `Fail` or `?` (unknown), as `talosctl service` prints it.
    pub health: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AddressRow {
    pub address: String,
    pub link: String,
    pub family: String,
    pub scope: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkRow {
    pub name: String,
    pub kind: String,
    pub hardware_addr: String,
    pub state: String,
    pub mtu: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteRow {
    pub destination: String,
    pub gateway: String,
    pub link: String,
    pub metric: u64,
    pub family: String,
}

/// A cumulative counter sample and when it was taken.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sample<T> {
    value: T,
    at: Instant,
}

/// All the dashboard knows about one node.
#[derive(Clone, Debug, Default)]
pub struct NodeData {
    pub version: Option<VersionRow>,
    pub hostname: Option<String>,
    pub machine: Option<MachineRow>,
    /// Unix seconds.
    pub boot_time: Option<u64>,
    pub cpu_count: usize,
    pub cpu: Option<CpuShares>,
    pub cpu_history: History,
    pub processes_running: u64,
    pub processes_blocked: u64,
    pub memory: Option<MemoryRow>,
    pub memory_history: History,
    pub load: Option<[f64; 3]>,
    pub load_history: History,
    pub processes: Vec<ProcessRow>,
    pub services: Vec<ServiceRow>,
    pub addresses: Vec<AddressRow>,
    pub links: Vec<LinkRow>,
    pub routes: Vec<RouteRow>,
    pub dns: Vec<String>,
    /// Bytes per second of all devices.
    pub rx_history: History,
    pub tx_history: History,
    pub logs: VecDeque<String>,
    /// The last failure of each kind of request; cleared by its next success.
    pub errors: BTreeMap<Kind, String>,
    pub(super) cpu_sample: Option<Sample<CpuStat>>,
    pub(super) net_sample: Option<Sample<(u64, u64)>>,
    pub(super) process_sample: Option<Sample<HashMap<i32, f64>>>,
    pub(super) log_partial: HashMap<Kind, String>,
}

impl NodeData {
    pub fn apply_version(&mut self, version: Version) {
        let info = version.version.unwrap_or_default();
        let platform = version.platform.unwrap_or_default();
        self.version = Some(VersionRow {
            tag: info.tag,
            arch: info.arch,
            platform: platform.name,
        });
    }

    pub fn apply_system_stat(&mut self, stat: SystemStat, at: Instant) {
        self.boot_time = Some(stat.boot_time).filter(|t| *t > 0);
        self.cpu_count = stat.cpu.len();
        self.processes_running = stat.process_running;
        self.processes_blocked = stat.process_blocked;
        let total = stat.cpu_total.unwrap_or_default();
        if let Some(previous) = &self.cpu_sample
            && let Some(shares) = cpu_shares(&previous.value, &total)
        {
            self.cpu = Some(shares);
            self.cpu_history.push(shares.busy());
        }
        self.cpu_sample = Some(Sample { value: total, at });
    }

    pub fn apply_memory(&mut self, meminfo: MemInfo) {
        let row = MemoryRow {
            total: meminfo.memtotal,
            available: meminfo.memavailable,
            buffers: meminfo.buffers,
            cached: meminfo.cached,
            swap_total: meminfo.swaptotal,
            swap_free: meminfo.swapfree,
        };
        self.memory_history.push(row.used_percent());
        self.memory = Some(row);
    }

    pub fn apply_load(&mut self, load: LoadAvg) {
        let values = [load.load1, load.load5, load.load15].map(|v| finite(v).max(0.0));
        self.load_history.push(values[0]);
        self.load = Some(values);
    }

    pub fn apply_processes(&mut self, processes: Vec<ProcessInfo>, at: Instant) {
        let previous = self.process_sample.take();
        let elapsed = previous
            .as_ref()
            .map(|p| at.saturating_duration_since(p.at).as_secs_f64())
            .unwrap_or_default();
        let mut times = HashMap::with_capacity(processes.len());
        self.processes = processes
            .into_iter()
            .map(|p| {
                let cpu_time = finite(p.cpu_time).max(0.0);
                times.insert(p.pid, cpu_time);
                let cpu_percent = previous
                    .as_ref()
                    .and_then(|s| s.value.get(&p.pid))
                    .filter(|_| elapsed > 0.0)
                    .map(|before| percent((cpu_time - before).max(0.0), elapsed))
                    .unwrap_or_default();
                let command = if p.args.is_empty() { p.command } else { p.args };
                ProcessRow {
                    pid: p.pid,
                    state: p.state,
                    threads: p.threads,
                    cpu_percent,
                    cpu_time,
                    virtual_memory: p.virtual_memory,
                    resident_memory: p.resident_memory,
                    command,
                }
            })
            .collect();
        self.processes.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then(b.resident_memory.cmp(&a.resident_memory))
                .then(a.pid.cmp(&b.pid))
        });
        self.process_sample = Some(Sample { value: times, at });
    }

    pub fn apply_services(&mut self, services: Vec<ServiceInfo>) {
        self.services = services
            .into_iter()
            .map(|s| {
                let health = match s.health {
                    Some(h) if h.unknown => "?",
                    Some(h) if h.healthy => "OK",
                    Some(_) => "Fail",
                    None => "?",
                };
                ServiceRow {
                    id: s.id,
                    state: s.state,
                    health: health.to_string(),
                }
            })
            .collect();
        self.services.sort_by(|a, b| a.id.cmp(&b.id));
    }

    pub fn apply_network_stats(&mut self, stats: NetworkDeviceStats, at: Instant) {
        let total = stats.total.unwrap_or_default();
        let now = (total.rx_bytes, total.tx_bytes);
        if let Some(previous) = &self.net_sample {
            let elapsed = at.saturating_duration_since(previous.at).as_secs_f64();
            if elapsed > 0.0 && now.0 >= previous.value.0 && now.1 >= previous.value.1 {
                self.rx_history
                    .push((now.0 - previous.value.0) as f64 / elapsed);
                self.tx_history
                    .push((now.1 - previous.value.1) as f64 / elapsed);
            }
        }
        self.net_sample = Some(Sample { value: now, at });
    }

    /// The `machine` resource's YAML spec.
    pub fn apply_machine_status(&mut self, spec: Option<&str>) {
        self.machine = spec.map(|spec| {
            let value = yaml(spec);
            let unmet = value["status"]["unmetConditions"]
                .as_sequence()
                .map(|conditions| {
                    conditions
                        .iter()
                        .map(|c| format!("{}: {}", text(&c["name"]), text(&c["reason"])))
                        .collect()
                })
                .unwrap_or_default();
            MachineRow {
                stage: text(&value["stage"]),
                ready: value["status"]["ready"].as_bool().unwrap_or(false),
                unmet,
            }
        });
    }

    pub fn apply_hostname(&mut self, hostname: Option<String>) {
        self.hostname = hostname.filter(|h| !h.is_empty());
    }

    /// `(id, YAML spec)` of each `AddressStatus`.
    pub fn apply_addresses(&mut self, specs: &[(String, String)]) {
        self.addresses = specs
            .iter()
            .map(|(_, spec)| {
                let value = yaml(spec);
                AddressRow {
                    address: text(&value["address"]),
                    link: text(&value["linkName"]),
                    family: text(&value["family"]),
                    scope: text(&value["scope"]),
                }
            })
            .collect();
    }

    /// `(id, YAML spec)` of each `LinkStatus`; the id is the link's name.
    pub fn apply_links(&mut self, specs: &[(String, String)]) {
        self.links = specs
            .iter()
            .map(|(id, spec)| {
                let value = yaml(spec);
                let kind = match text(&value["kind"]) {
                    kind if kind.is_empty() => text(&value["type"]),
                    kind => kind,
                };
                LinkRow {
                    name: id.clone(),
                    kind,
                    hardware_addr: text(&value["hardwareAddr"]),
                    state: text(&value["operationalState"]),
                    mtu: value["mtu"].as_u64().unwrap_or_default(),
                }
            })
            .collect();
    }

    /// `(id, YAML spec)` of each `RouteStatus`.
    pub fn apply_routes(&mut self, specs: &[(String, String)]) {
        self.routes = specs
            .iter()
            .map(|(_, spec)| {
                let value = yaml(spec);
                RouteRow {
                    destination: text(&value["dst"]),
                    gateway: text(&value["gateway"]),
                    link: text(&value["outLinkName"]),
                    metric: value["priority"].as_u64().unwrap_or_default(),
                    family: text(&value["family"]),
                }
            })
            .collect();
    }

    pub fn apply_resolvers(&mut self, specs: &[(String, String)]) {
        self.dns = specs
            .iter()
            .flat_map(|(_, spec)| {
                yaml(spec)["dnsServers"]
                    .as_sequence()
                    .map(|servers| servers.iter().map(text).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
    }

    /// A chunk of a log stream of `kind`: whole lines go to the log, a trailing partial line
    /// waits for the rest.
    pub fn apply_log_bytes(&mut self, kind: Kind, bytes: &[u8]) {
        let partial = self.log_partial.entry(kind).or_default();
        partial.push_str(&String::from_utf8_lossy(bytes));
        let Some(end) = partial.rfind('\n') else {
            return;
        };
        let rest = partial.split_off(end + 1);
        let complete = std::mem::replace(partial, rest);
        for line in complete.lines() {
            self.push_log_line(line);
        }
    }

    pub fn push_log_line(&mut self, line: &str) {
        if self.logs.len() == LOG_LINES {
            self.logs.pop_front();
        }
        // Control characters (escape sequences in a log line) would corrupt the screen.
        self.logs.push_back(
            line.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        );
    }

    /// The errors, kinds with the same error together: `links, routes: <error>`.
    pub fn error_summary(&self) -> Vec<String> {
        let mut grouped: Vec<(Vec<&str>, &str)> = Vec::new();
        for (kind, error) in &self.errors {
            match grouped.iter_mut().find(|(_, e)| *e == error.as_str()) {
                Some((kinds, _)) => kinds.push(kind.name()),
                None => grouped.push((vec![kind.name()], error)),
            }
        }
        grouped
            .into_iter()
            .map(|(kinds, error)| format!("{}: {error}", kinds.join(", ")))
            .collect()
    }

    /// The addresses shown as the node's IPs: global ones, else all.
    pub fn ips(&self) -> Vec<&str> {
        let global: Vec<&str> = self
            .addresses
            .iter()
            .filter(|a| a.scope == "global")
            .map(|a| a.address.as_str())
            .collect();
        if global.is_empty() {
            self.addresses.iter().map(|a| a.address.as_str()).collect()
        } else {
            global
        }
    }

    /// The gateways of the default routes.
    pub fn gateways(&self) -> Vec<&str> {
        let mut gateways: Vec<&str> = self
            .routes
            .iter()
            .filter(|r| {
                !r.gateway.is_empty() && (r.destination.is_empty() || r.destination.ends_with("/0"))
            })
            .map(|r| r.gateway.as_str())
            .collect();
        gateways.dedup();
        gateways
    }
}

/// CPU time shares between two cumulative samples; `None` when no time passed or the counters
/// went backwards.
fn cpu_shares(before: &CpuStat, after: &CpuStat) -> Option<CpuShares> {
    let delta = |a: f64, b: f64| (finite(b) - finite(a)).max(0.0);
    let user = delta(before.user + before.nice, after.user + after.nice);
    let system = delta(before.system, after.system);
    let idle = delta(before.idle, after.idle);
    let iowait = delta(before.iowait, after.iowait);
    let other = delta(
        before.irq + before.soft_irq + before.steal,
        after.irq + after.soft_irq + after.steal,
    );
    let total = user + system + idle + iowait + other;
    (total > 0.0).then(|| CpuShares {
        user: percent(user, total),
        system: percent(system, total),
        iowait: percent(iowait, total),
        idle: percent(idle, total),
        other: percent(other, total),
    })
}

pub fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        finite(part / whole * 100.0)
    } else {
        0.0
    }
}

fn finite(value: f64) -> f64 {
    if value.is_finite() { value } else { 0.0 }
}

fn yaml(spec: &str) -> serde_norway::Value {
    serde_norway::from_str(spec).unwrap_or(serde_norway::Value::Null)
}

/// A scalar as text; anything else as empty.
fn text(value: &serde_norway::Value) -> String {
    match value {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proto::machine::{NetDev, ProcessInfo};

    use super::*;

    fn stat(user: f64, system: f64, idle: f64) -> SystemStat {
        SystemStat {
            boot_time: 1_700_000_000,
            cpu_total: Some(CpuStat {
                user,
                system,
                idle,
                ..CpuStat::default()
            }),
            cpu: vec![CpuStat::default(); 4],
            ..SystemStat::default()
        }
    }

    #[test]
    fn cpu_usage_is_the_busy_share_between_two_samples() {
        let mut node = NodeData::default();
        let start = Instant::now();
        node.apply_system_stat(stat(100.0, 50.0, 850.0), start);
        assert_eq!(node.cpu, None, "one sample gives no rate");
        node.apply_system_stat(stat(130.0, 60.0, 910.0), start + Duration::from_secs(3));
        let cpu = node.cpu.expect("a share");
        assert!((cpu.busy() - 40.0).abs() < 1e-9, "{cpu:?}");
        assert_eq!(node.cpu_count, 4);
        assert_eq!(node.cpu_history.len(), 1);
        // Counters going backwards (a reboot) give no sample rather than a negative one.
        node.apply_system_stat(stat(1.0, 1.0, 1.0), start + Duration::from_secs(6));
        assert_eq!(node.cpu_history.len(), 1);
    }

    #[test]
    fn process_cpu_share_comes_from_cpu_time_deltas() {
        let mut node = NodeData::default();
        let start = Instant::now();
        let process = |pid, cpu_time| ProcessInfo {
            pid,
            cpu_time,
            command: format!("p{pid}"),
            ..ProcessInfo::default()
        };
        node.apply_processes(vec![process(1, 10.0), process(2, 5.0)], start);
        node.apply_processes(
            vec![process(1, 10.5), process(2, 8.0), process(3, f64::NAN)],
            start + Duration::from_secs(2),
        );
        let shares: Vec<(i32, f64)> = node
            .processes
            .iter()
            .map(|p| (p.pid, p.cpu_percent))
            .collect();
        assert_eq!(shares, vec![(2, 150.0), (1, 25.0), (3, 0.0)]);
    }

    #[test]
    fn network_rates_skip_counter_resets() {
        let mut node = NodeData::default();
        let start = Instant::now();
        let stats = |rx, tx| NetworkDeviceStats {
            total: Some(NetDev {
                rx_bytes: rx,
                tx_bytes: tx,
                ..NetDev::default()
            }),
            ..NetworkDeviceStats::default()
        };
        node.apply_network_stats(stats(1000, 500), start);
        node.apply_network_stats(stats(4000, 1100), start + Duration::from_secs(3));
        node.apply_network_stats(stats(10, 10), start + Duration::from_secs(6));
        assert_eq!(node.rx_history.values().collect::<Vec<_>>(), vec![1000.0]);
        assert_eq!(node.tx_history.values().collect::<Vec<_>>(), vec![200.0]);
    }

    #[test]
    fn resources_read_upstream_field_names_and_survive_garbage() {
        let mut node = NodeData::default();
        node.apply_machine_status(Some(
            "stage: booting\nstatus:\n  ready: false\n  unmetConditions:\n    - name: time\n      reason: not synced\n",
        ));
        assert_eq!(
            node.machine,
            Some(MachineRow {
                stage: "booting".into(),
                ready: false,
                unmet: vec!["time: not synced".into()],
            })
        );
        node.apply_machine_status(Some("{{{ not yaml"));
        assert_eq!(node.machine.as_ref().map(|m| m.stage.as_str()), Some(""));
        node.apply_addresses(&[
            (
                "lo/127.0.0.1/8".into(),
                "address: 127.0.0.1/8\nlinkName: lo\nscope: host\n".into(),
            ),
            (
                "eth0/10.5.0.2/24".into(),
                "address: 10.5.0.2/24\nlinkName: eth0\nscope: global\n".into(),
            ),
            ("x".into(), "- a list".into()),
        ]);
        assert_eq!(node.ips(), vec!["10.5.0.2/24"]);
        node.apply_routes(&[(
            "r".into(),
            "dst: ''\ngateway: 10.5.0.1\noutLinkName: eth0\npriority: 1024\n".into(),
        )]);
        assert_eq!(node.gateways(), vec!["10.5.0.1"]);
        assert_eq!(node.routes[0].metric, 1024);
    }

    #[test]
    fn kinds_with_the_same_error_are_named_together() {
        let mut node = NodeData::default();
        for kind in [Kind::Links, Kind::Addresses] {
            node.errors.insert(kind, "not managed".into());
        }
        node.errors.insert(Kind::Memory, "denied".into());
        assert_eq!(
            node.error_summary(),
            ["memory: denied", "addresses, links: not managed"]
        );
    }

    #[test]
    fn log_chunks_are_split_into_lines_across_chunks() {
        let mut node = NodeData::default();
        node.apply_log_bytes(Kind::Logs, b"first line\nsec");
        node.apply_log_bytes(Kind::Dmesg, b"kernel\n");
        node.apply_log_bytes(Kind::Logs, b"ond\x1b[31m line\n");
        assert_eq!(
            node.logs,
            ["first line", "kernel", "second [31m line"].map(String::from)
        );
        for i in 0..LOG_LINES {
            node.push_log_line(&i.to_string());
        }
        assert_eq!(node.logs.len(), LOG_LINES);
        assert_eq!(node.logs.front().map(String::as_str), Some("0"));
    }
}
