//! Drawing the dashboard from one node's [`NodeData`]: the header (node, version, uptime, usage,
//! the node's errors), the selected screen, and the footer (nodes and screens). Pure functions
//! of their input, so each screen is tested by drawing into ratatui's `TestBackend`.
//!
//! Layout after upstream's: a one-line header about the selected node, a footer
//! `[node1 | node2] --- [F1: Summary] --- [F2: Monitor] --- [F3: Network]`, and between them the
//! Summary (machine and network facts, services, CPU and memory history, the log), the Monitor
//! (CPU, load, processes and memory figures, their graphs and network traffic, the process
//! table) or the Network screen (links, addresses, routes).

use std::time::SystemTime;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, GraphType, Paragraph, Row, Sparkline, Table,
};

use super::data::{History, NodeData};
use crate::humanize::si_bytes;

/// The screens, in the order of their function keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Summary,
    Monitor,
    Network,
}

impl Screen {
    pub const ALL: [Screen; 3] = [Screen::Summary, Screen::Monitor, Screen::Network];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Summary => "Summary",
            Screen::Monitor => "Monitor",
            Screen::Network => "Network",
        }
    }
}

/// What is drawn besides the node's data.
#[derive(Clone, Debug)]
pub struct View<'a> {
    pub nodes: &'a [String],
    pub selected: usize,
    pub screen: Screen,
    /// Lines scrolled back from the newest log line.
    pub log_scroll: usize,
    /// Rows scrolled down the process table.
    pub process_scroll: usize,
    /// Advances once per redraw tick: the header's activity indicator.
    pub spinner: usize,
    pub now: SystemTime,
}

/// Upstream's spinner: box corners that the Linux console can draw.
const SPINNER: [&str; 4] = ["┐", "┘", "└", "┌"];

const NOT_AVAILABLE: &str = "n/a";

pub fn draw(frame: &mut Frame, view: &View, data: &NodeData) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(view, data)), header);
    match view.screen {
        Screen::Summary => summary(frame, body, view, data),
        Screen::Monitor => monitor(frame, body, view, data),
        Screen::Network => network(frame, body, data),
    }
    frame.render_widget(Paragraph::new(footer_line(view)), footer);
}

fn header_lines(view: &View, data: &NodeData) -> Vec<Line<'static>> {
    let hostname = data
        .hostname
        .clone()
        .unwrap_or_else(|| "(no hostname)".into());
    let version = data
        .version
        .as_ref()
        .map(|v| v.tag.clone())
        .unwrap_or_else(|| NOT_AVAILABLE.into());
    let uptime = data
        .boot_time
        .and_then(|boot| {
            let now = view.now.duration_since(SystemTime::UNIX_EPOCH).ok()?;
            Some(format_uptime(now.as_secs().saturating_sub(boot)))
        })
        .unwrap_or_else(|| NOT_AVAILABLE.into());
    let memory = data.memory;
    let facts = format!(
        " (Talos {version}): uptime {uptime}, {}, {} RAM, PROCS {}, CPU {}, RAM {}",
        match data.cpu_count {
            0 => NOT_AVAILABLE.to_string(),
            1 => "1 CPU".to_string(),
            n => format!("{n} CPUs"),
        },
        memory
            .map(|m| si_bytes(m.total.saturating_mul(1024)))
            .unwrap_or_else(|| NOT_AVAILABLE.into()),
        if data.processes.is_empty() {
            NOT_AVAILABLE.to_string()
        } else {
            data.processes.len().to_string()
        },
        data.cpu_history
            .last()
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| NOT_AVAILABLE.into()),
        memory
            .map(|m| format!("{:.1}%", m.used_percent()))
            .unwrap_or_else(|| NOT_AVAILABLE.into()),
    );
    let first = Line::from(vec![
        Span::styled(
            format!("{} ", SPINNER[view.spinner % SPINNER.len()]),
            Style::new().fg(Color::Green),
        ),
        Span::styled(
            hostname,
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Span::raw(facts),
    ]);
    let node = view
        .nodes
        .get(view.selected)
        .map(String::as_str)
        .unwrap_or_default();
    let mut second = vec![Span::styled(
        format!("  node {node}"),
        Style::new().fg(Color::DarkGray),
    )];
    if !data.errors.is_empty() {
        let errors = data.error_summary();
        second.push(Span::styled(
            format!("  error: {}", errors.join("; ")),
            Style::new().fg(Color::Red),
        ));
    }
    vec![first, Line::from(second)]
}

fn footer_line(view: &View) -> Line<'static> {
    let selected = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::raw("[")];
    for (index, node) in view.nodes.iter().enumerate() {
        if index > 0 {
            spans.push(Span::raw(" | "));
        }
        let style = if index == view.selected {
            selected
        } else {
            Style::new()
        };
        spans.push(Span::styled(node.clone(), style));
    }
    spans.push(Span::raw("]"));
    for (index, screen) in Screen::ALL.iter().enumerate() {
        spans.push(Span::raw(" --- "));
        let style = if *screen == view.screen {
            selected
        } else {
            Style::new()
        };
        spans.push(Span::styled(
            format!("[F{}: {}]", index + 1, screen.title()),
            style,
        ));
    }
    spans.push(Span::styled(
        " --- q: quit",
        Style::new().fg(Color::DarkGray),
    ));
    Line::from(spans)
}

/// Upstream's uptime: `72h3m5s`, with days in front past a day (`1d2h0m5s`).
fn format_uptime(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hours, minutes, seconds) = (rest / 3600, rest / 60 % 60, rest % 60);
    let time = if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    };
    if days > 0 {
        format!("{days}d{time}")
    } else {
        time
    }
}

fn boxed(title: impl Into<Line<'static>>) -> Block<'static> {
    Block::bordered().title(title)
}

/// `NAME  value` rows with the names in one colour and column.
fn facts(rows: Vec<(&'static str, Span<'static>)>) -> Paragraph<'static> {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 2;
    Paragraph::new(
        rows.into_iter()
            .map(|(name, value)| {
                Line::from(vec![
                    Span::styled(format!("{name:width$}"), Style::new().fg(Color::Cyan)),
                    value,
                ])
            })
            .collect::<Vec<_>>(),
    )
}

fn or_na(text: impl Into<String>) -> Span<'static> {
    let text = text.into();
    if text.is_empty() {
        Span::raw(NOT_AVAILABLE)
    } else {
        Span::raw(text)
    }
}

fn summary(frame: &mut Frame, area: Rect, view: &View, data: &NodeData) {
    let [top, graphs, logs] = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Min(3),
    ])
    .areas(area);
    let [talos, services, net] = Layout::horizontal([
        Constraint::Ratio(2, 5),
        Constraint::Ratio(1, 5),
        Constraint::Ratio(2, 5),
    ])
    .areas(top);

    let version = data.version.clone().unwrap_or_default();
    let (stage, ready) = match &data.machine {
        Some(machine) => {
            let ready = if machine.ready {
                Span::styled("√ ready", Style::new().fg(Color::Green))
            } else if machine.unmet.is_empty() {
                Span::styled("× not ready", Style::new().fg(Color::Red))
            } else {
                Span::styled(
                    format!("× {}", machine.unmet.join(", ")),
                    Style::new().fg(Color::Red),
                )
            };
            (or_na(machine.stage.clone()), ready)
        }
        None => (Span::raw(NOT_AVAILABLE), Span::raw(NOT_AVAILABLE)),
    };
    frame.render_widget(
        facts(vec![
            ("HOSTNAME", or_na(data.hostname.clone().unwrap_or_default())),
            ("VERSION", or_na(version.tag)),
            ("PLATFORM", or_na(version.platform)),
            ("ARCH", or_na(version.arch)),
            ("STAGE", stage),
            ("READY", ready),
            ("LOAD", or_na(load_text(data))),
        ])
        .block(boxed("Talos")),
        talos,
    );

    let visible = usize::from(services.height.saturating_sub(2));
    let mut lines: Vec<Line> = data
        .services
        .iter()
        .take(visible)
        .map(|s| {
            let colour = match (s.state.as_str(), s.health.as_str()) {
                ("Running", "OK" | "?") | ("Finished" | "Skipped", _) => Color::Green,
                ("Failed", _) | (_, "Fail") => Color::Red,
                _ => Color::Yellow,
            };
            Line::from(vec![
                Span::raw(format!("{:<12}", s.id)),
                Span::styled(format!("{} {}", s.state, s.health), Style::new().fg(colour)),
            ])
        })
        .collect();
    if data.services.len() > visible && visible > 0 {
        lines.pop();
        lines.push(Line::raw(format!(
            "… {} more",
            data.services.len() + 1 - visible
        )));
    }
    frame.render_widget(Paragraph::new(lines).block(boxed("Services")), services);

    frame.render_widget(
        facts(vec![
            ("HOST", or_na(data.hostname.clone().unwrap_or_default())),
            ("IP", or_na(data.ips().join(", "))),
            ("GW", or_na(data.gateways().join(", "))),
            ("DNS", or_na(data.dns.join(", "))),
            ("LINKS", or_na(links_up(data))),
        ])
        .block(boxed("Network")),
        net,
    );

    let [cpu, memory] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(graphs);
    let cpu_title = format!(
        "CPU {}",
        data.cpu_history
            .last()
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| NOT_AVAILABLE.into())
    );
    sparkline(
        frame,
        cpu,
        cpu_title,
        &data.cpu_history,
        Some(100.0),
        Color::Green,
    );
    let memory_title = match data.memory {
        Some(m) => format!(
            "Memory {:.1}% ({} of {})",
            m.used_percent(),
            si_bytes(m.used().saturating_mul(1024)),
            si_bytes(m.total.saturating_mul(1024))
        ),
        None => format!("Memory {NOT_AVAILABLE}"),
    };
    sparkline(
        frame,
        memory,
        memory_title,
        &data.memory_history,
        Some(100.0),
        Color::Blue,
    );

    log_pane(frame, logs, view, data);
}

fn load_text(data: &NodeData) -> String {
    data.load
        .map(|[one, five, fifteen]| format!("{one:.2} {five:.2} {fifteen:.2}"))
        .unwrap_or_default()
}

fn links_up(data: &NodeData) -> String {
    if data.links.is_empty() {
        return String::new();
    }
    let up = data.links.iter().filter(|l| l.state == "up").count();
    format!("{} ({up} up)", data.links.len())
}

/// The newest history that fits the area, on a bordered block.
fn sparkline(
    frame: &mut Frame,
    area: Rect,
    title: String,
    history: &History,
    max: Option<f64>,
    colour: Color,
) {
    let width = usize::from(area.width.saturating_sub(2));
    let skip = history.len().saturating_sub(width);
    let values: Vec<u64> = history
        .values()
        .skip(skip)
        .map(|v| v.round() as u64)
        .collect();
    let mut widget = Sparkline::default()
        .block(boxed(title))
        .data(values)
        .style(Style::new().fg(colour));
    if let Some(max) = max {
        widget = widget.max(max as u64);
    }
    frame.render_widget(widget, area);
}

fn log_pane(frame: &mut Frame, area: Rect, view: &View, data: &NodeData) {
    let height = usize::from(area.height.saturating_sub(2));
    let scroll = view.log_scroll.min(data.logs.len().saturating_sub(height));
    let end = data.logs.len() - scroll;
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = data
        .logs
        .range(start..end)
        .map(|line| Line::raw(line.clone()))
        .collect();
    let title = if scroll > 0 {
        format!("Logs (↑{scroll})")
    } else {
        "Logs".to_string()
    };
    frame.render_widget(Paragraph::new(lines).block(boxed(title)), area);
}

fn monitor(frame: &mut Frame, area: Rect, view: &View, data: &NodeData) {
    let [info, graphs, table] = Layout::vertical([
        Constraint::Length(7),
        Constraint::Percentage(40),
        Constraint::Min(4),
    ])
    .areas(area);
    let [cpu, load, procs, memory] = Layout::horizontal([
        Constraint::Ratio(1, 4),
        Constraint::Ratio(1, 4),
        Constraint::Ratio(1, 4),
        Constraint::Ratio(1, 4),
    ])
    .areas(info);
    let share = |value: Option<f64>| {
        Span::raw(
            value
                .map(|v| format!("{v:.1}%"))
                .unwrap_or_else(|| NOT_AVAILABLE.into()),
        )
    };
    frame.render_widget(
        facts(vec![
            ("USER", share(data.cpu.map(|c| c.user))),
            ("SYSTEM", share(data.cpu.map(|c| c.system))),
            ("IOWAIT", share(data.cpu.map(|c| c.iowait))),
            ("IDLE", share(data.cpu.map(|c| c.idle))),
            ("CPUS", Span::raw(data.cpu_count.to_string())),
        ])
        .block(boxed("CPU")),
        cpu,
    );
    let load_row = |index: usize| {
        Span::raw(
            data.load
                .map(|l| format!("{:.2}", l[index]))
                .unwrap_or_else(|| NOT_AVAILABLE.into()),
        )
    };
    frame.render_widget(
        facts(vec![
            ("1 MIN", load_row(0)),
            ("5 MIN", load_row(1)),
            ("15 MIN", load_row(2)),
        ])
        .block(boxed("Load average")),
        load,
    );
    frame.render_widget(
        facts(vec![
            ("TOTAL", Span::raw(data.processes.len().to_string())),
            ("RUNNING", Span::raw(data.processes_running.to_string())),
            ("BLOCKED", Span::raw(data.processes_blocked.to_string())),
        ])
        .block(boxed("Processes")),
        procs,
    );
    let kb = |value: Option<u64>| {
        Span::raw(
            value
                .map(|v| si_bytes(v.saturating_mul(1024)))
                .unwrap_or_else(|| NOT_AVAILABLE.into()),
        )
    };
    let m = data.memory;
    frame.render_widget(
        facts(vec![
            ("TOTAL", kb(m.map(|m| m.total))),
            ("USED", kb(m.map(|m| m.used()))),
            ("AVAILABLE", kb(m.map(|m| m.available))),
            ("CACHED", kb(m.map(|m| m.cached + m.buffers))),
            (
                "SWAP",
                kb(m.map(|m| m.swap_total.saturating_sub(m.swap_free))),
            ),
        ])
        .block(boxed("Memory")),
        memory,
    );

    let [cpu_graph, memory_graph, net] = Layout::horizontal([
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(graphs);
    percent_chart(
        frame,
        cpu_graph,
        "CPU usage",
        &data.cpu_history,
        Color::Green,
    );
    percent_chart(
        frame,
        memory_graph,
        "Memory usage",
        &data.memory_history,
        Color::Blue,
    );
    let [rx, tx] = Layout::vertical([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(net);
    let rate = |history: &History| {
        history
            .last()
            .map(|v| format!("{}/s", si_bytes(v as u64)))
            .unwrap_or_else(|| NOT_AVAILABLE.into())
    };
    sparkline(
        frame,
        rx,
        format!("Net RX {}", rate(&data.rx_history)),
        &data.rx_history,
        None,
        Color::Magenta,
    );
    sparkline(
        frame,
        tx,
        format!("Net TX {}", rate(&data.tx_history)),
        &data.tx_history,
        None,
        Color::Cyan,
    );

    process_table(frame, table, view, data);
}

/// A 0–100 % line chart of a history, newest at the right.
fn percent_chart(frame: &mut Frame, area: Rect, title: &str, history: &History, colour: Color) {
    let offset = (super::data::HISTORY - history.len()) as f64;
    let points: Vec<(f64, f64)> = history
        .values()
        .enumerate()
        .map(|(i, v)| (offset + i as f64, v.clamp(0.0, 100.0)))
        .collect();
    let title = format!(
        "{title} {}",
        history
            .last()
            .map(|v| format!("{v:.1}%"))
            .unwrap_or_else(|| NOT_AVAILABLE.into())
    );
    let chart = Chart::new(vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(colour))
            .data(&points),
    ])
    .block(boxed(title))
    .x_axis(Axis::default().bounds([0.0, super::data::HISTORY as f64]))
    .y_axis(
        Axis::default()
            .bounds([0.0, 100.0])
            .labels(["0", "50", "100"]),
    );
    frame.render_widget(chart, area);
}

fn process_table(frame: &mut Frame, area: Rect, view: &View, data: &NodeData) {
    let height = usize::from(area.height.saturating_sub(3));
    let scroll = view
        .process_scroll
        .min(data.processes.len().saturating_sub(height));
    let rows: Vec<Row> = data
        .processes
        .iter()
        .skip(scroll)
        .take(height)
        .map(|p| {
            Row::new(vec![
                Cell::from(p.pid.to_string()),
                Cell::from(p.state.clone()),
                Cell::from(p.threads.to_string()),
                Cell::from(format!("{:.1}", p.cpu_percent)),
                Cell::from(format!("{:.2}", p.cpu_time)),
                Cell::from(si_bytes(p.virtual_memory)),
                Cell::from(si_bytes(p.resident_memory)),
                Cell::from(p.command.clone()),
            ])
        })
        .collect();
    let header = Row::new([
        "PID", "STATE", "THREADS", "CPU%", "CPU-TIME", "VIRTMEM", "RESMEM", "COMMAND",
    ])
    .style(Style::new().fg(Color::Cyan));
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Min(10),
        ],
    )
    .header(header)
    .block(boxed(format!(
        "Processes ({}) sorted by CPU",
        data.processes.len()
    )));
    frame.render_widget(table, area);
}

fn network(frame: &mut Frame, area: Rect, data: &NodeData) {
    let [facts_area, links, addresses, routes] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
        Constraint::Ratio(1, 3),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(format!(
            " HOST {}   GW {}   DNS {}",
            data.hostname.as_deref().unwrap_or(NOT_AVAILABLE),
            non_empty(data.gateways().join(", ")),
            non_empty(data.dns.join(", ")),
        )),
        facts_area,
    );
    let heading = Style::new().fg(Color::Cyan);
    frame.render_widget(
        Table::new(
            data.links.iter().map(|l| {
                Row::new(vec![
                    l.name.clone(),
                    l.kind.clone(),
                    l.hardware_addr.clone(),
                    l.state.clone(),
                    l.mtu.to_string(),
                ])
            }),
            [
                Constraint::Length(16),
                Constraint::Length(10),
                Constraint::Length(19),
                Constraint::Length(10),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(["LINK", "KIND", "HW ADDR", "STATE", "MTU"]).style(heading))
        .block(boxed(format!("Links ({})", data.links.len()))),
        links,
    );
    frame.render_widget(
        Table::new(
            data.addresses.iter().map(|a| {
                Row::new(vec![
                    a.address.clone(),
                    a.link.clone(),
                    a.family.clone(),
                    a.scope.clone(),
                ])
            }),
            [
                Constraint::Length(44),
                Constraint::Length(16),
                Constraint::Length(8),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(["ADDRESS", "LINK", "FAMILY", "SCOPE"]).style(heading))
        .block(boxed(format!("Addresses ({})", data.addresses.len()))),
        addresses,
    );
    frame.render_widget(
        Table::new(
            data.routes.iter().map(|r| {
                Row::new(vec![
                    if r.destination.is_empty() {
                        "default".to_string()
                    } else {
                        r.destination.clone()
                    },
                    r.gateway.clone(),
                    r.link.clone(),
                    r.metric.to_string(),
                    r.family.clone(),
                ])
            }),
            [
                Constraint::Length(44),
                Constraint::Length(40),
                Constraint::Length(16),
                Constraint::Length(8),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(["DESTINATION", "GATEWAY", "LINK", "METRIC", "FAMILY"]).style(heading))
        .block(boxed(format!("Routes ({})", data.routes.len()))),
        routes,
    );
}

fn non_empty(text: String) -> String {
    if text.is_empty() {
        NOT_AVAILABLE.to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::cmd::dashboard::data::{
        AddressRow, CpuShares, Kind, LinkRow, MachineRow, MemoryRow, ProcessRow, RouteRow,
        ServiceRow, VersionRow,
    };

    const BOOT: u64 = 1_700_000_000;

    /// A node as a fixed snapshot: two hours, five seconds up.
    fn snapshot() -> NodeData {
        let mut node = NodeData {
            version: Some(VersionRow {
                tag: "v1.11.0-rs".into(),
                arch: "amd64".into(),
                platform: "metal".into(),
            }),
            hostname: Some("cp-1".into()),
            machine: Some(MachineRow {
                stage: "running".into(),
                ready: true,
                unmet: Vec::new(),
            }),
            boot_time: Some(BOOT),
            cpu_count: 4,
            cpu: Some(CpuShares {
                user: 30.0,
                system: 10.0,
                iowait: 1.0,
                idle: 59.0,
                other: 0.0,
            }),
            load: Some([0.5, 0.25, 0.75]),
            memory: Some(MemoryRow {
                total: 8_000_000,
                available: 6_000_000,
                buffers: 100_000,
                cached: 900_000,
                swap_total: 0,
                swap_free: 0,
            }),
            processes: vec![
                ProcessRow {
                    pid: 1,
                    state: "S".into(),
                    threads: 12,
                    cpu_percent: 2.5,
                    cpu_time: 31.25,
                    virtual_memory: 2_000_000_000,
                    resident_memory: 80_000_000,
                    command: "/sbin/init".into(),
                },
                ProcessRow {
                    pid: 742,
                    state: "R".into(),
                    threads: 30,
                    cpu_percent: 1.0,
                    cpu_time: 5.0,
                    virtual_memory: 11_000_000_000,
                    resident_memory: 120_000_000,
                    command: "/usr/bin/etcd --data-dir=/var/lib/etcd".into(),
                },
            ],
            services: vec![
                ServiceRow {
                    id: "apid".into(),
                    state: "Running".into(),
                    health: "OK".into(),
                },
                ServiceRow {
                    id: "etcd".into(),
                    state: "Preparing".into(),
                    health: "?".into(),
                },
            ],
            addresses: vec![AddressRow {
                address: "10.5.0.2/24".into(),
                link: "eth0".into(),
                family: "inet4".into(),
                scope: "global".into(),
            }],
            links: vec![LinkRow {
                name: "eth0".into(),
                kind: "ether".into(),
                hardware_addr: "52:54:00:12:34:56".into(),
                state: "up".into(),
                mtu: 1500,
            }],
            routes: vec![RouteRow {
                destination: String::new(),
                gateway: "10.5.0.1".into(),
                link: "eth0".into(),
                metric: 1024,
                family: "inet4".into(),
            }],
            dns: vec!["1.1.1.1".into()],
            ..NodeData::default()
        };
        for percent in [10.0, 40.0] {
            node.cpu_history.push(percent);
        }
        node.memory_history.push(25.0);
        node.rx_history.push(2_500.0);
        node.tx_history.push(1_200.0);
        node.push_log_line("machined: service apid started");
        node.push_log_line("kern: info: [2024-01-01T00:00:00Z]: eth0: link up");
        node
    }

    fn render(screen: Screen, node: &NodeData) -> String {
        let nodes = ["10.5.0.2".to_string(), "10.5.0.3".to_string()];
        let view = View {
            nodes: &nodes,
            selected: 0,
            screen,
            log_scroll: 0,
            process_scroll: 0,
            spinner: 1,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(BOOT + 7205),
        };
        let mut terminal = Terminal::new(TestBackend::new(160, 40)).expect("test terminal");
        terminal
            .draw(|frame| draw(frame, &view, node))
            .expect("drawn");
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    fn assert_shows(screen: &str, expected: &[&str]) {
        for text in expected {
            assert!(screen.contains(text), "{text:?} missing from:\n{screen}");
        }
    }

    #[test]
    fn header_and_footer_name_the_node_and_its_figures() {
        let screen = render(Screen::Summary, &snapshot());
        let header = screen.lines().next().unwrap_or_default();
        assert_eq!(
            header.trim_end(),
            "┘ cp-1 (Talos v1.11.0-rs): uptime 2h0m5s, 4 CPUs, 8.2 GB RAM, PROCS 2, CPU 40.0%, RAM 25.0%"
        );
        let footer = screen.lines().last().unwrap_or_default();
        assert_eq!(
            footer.trim_end(),
            "[10.5.0.2 | 10.5.0.3] --- [F1: Summary] --- [F2: Monitor] --- [F3: Network] --- q: quit"
        );
    }

    #[test]
    fn summary_shows_machine_services_network_usage_and_logs() {
        let screen = render(Screen::Summary, &snapshot());
        assert_shows(
            &screen,
            &[
                "HOSTNAME  cp-1",
                "VERSION   v1.11.0-rs",
                "PLATFORM  metal",
                "STAGE     running",
                "READY     √ ready",
                "apid        Running OK",
                "etcd        Preparing ?",
                "IP     10.5.0.2/24",
                "GW     10.5.0.1",
                "DNS    1.1.1.1",
                "CPU 40.0%",
                "Memory 25.0% (2.0 GB of 8.2 GB)",
                "machined: service apid started",
                "eth0: link up",
            ],
        );
    }

    #[test]
    fn monitor_shows_figures_graphs_and_the_process_table() {
        let screen = render(Screen::Monitor, &snapshot());
        assert_shows(
            &screen,
            &[
                "USER    30.0%",
                "1 MIN   0.50",
                "15 MIN  0.75",
                "TOTAL    2",
                "AVAILABLE  6.1 GB",
                "CPU usage 40.0%",
                "Memory usage 25.0%",
                "Net RX 2.5 kB/s",
                "Net TX 1.2 kB/s",
                "Processes (2) sorted by CPU",
                "PID      STATE  THREADS  CPU%    CPU-TIME   VIRTMEM   RESMEM    COMMAND",
                "742      R      30       1.0     5.00       11 GB     120 MB    /usr/bin/etcd --data-dir",
            ],
        );
        // Sorted as the data gave them: the busiest first.
        let init = screen.find("/sbin/init").unwrap_or(usize::MAX);
        let etcd = screen.find("/usr/bin/etcd").unwrap_or(0);
        assert!(init < etcd);
    }

    #[test]
    fn network_shows_links_addresses_and_routes() {
        let screen = render(Screen::Network, &snapshot());
        assert_shows(
            &screen,
            &[
                "HOST cp-1   GW 10.5.0.1   DNS 1.1.1.1",
                "Links (1)",
                "eth0             ether      52:54:00:12:34:56   up         1500",
                "Addresses (1)",
                "10.5.0.2/24                                  eth0             inet4    global",
                "Routes (1)",
                "default                                      10.5.0.1                                 eth0             1024     inet4",
            ],
        );
    }

    #[test]
    fn a_node_without_data_shows_its_errors_instead() {
        let mut node = NodeData::default();
        node.errors.insert(
            Kind::Version,
            "rpc error: code = Unavailable desc = connection refused".into(),
        );
        for screen in Screen::ALL {
            let text = render(screen, &node);
            let header: Vec<&str> = text.lines().take(2).collect();
            assert_eq!(
                header[0].trim_end(),
                "┘ (no hostname) (Talos n/a): uptime n/a, n/a, n/a RAM, PROCS n/a, CPU n/a, RAM n/a"
            );
            assert_eq!(
                header[1].trim_end(),
                "  node 10.5.0.2  error: version: rpc error: code = Unavailable desc = connection refused"
            );
        }
    }

    #[test]
    fn the_log_scrolls_back_from_its_newest_line() {
        let mut node = snapshot();
        for i in 0..200 {
            node.push_log_line(&format!("line {i}"));
        }
        let nodes = ["n".to_string()];
        let mut view = View {
            nodes: &nodes,
            selected: 0,
            screen: Screen::Summary,
            log_scroll: 0,
            process_scroll: 0,
            spinner: 0,
            now: SystemTime::UNIX_EPOCH,
        };
        let draw_text = |view: &View| {
            let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("test terminal");
            terminal.draw(|f| draw(f, view, &node)).expect("drawn");
            format!("{:?}", terminal.backend().buffer())
        };
        let newest = draw_text(&view);
        assert!(newest.contains("line 199") && !newest.contains("line 150"));
        view.log_scroll = 50;
        let older = draw_text(&view);
        assert!(older.contains("line 149") && !older.contains("line 199"));
        assert!(older.contains("Logs (↑50)"));
        // Scrolling past the oldest line stops at it.
        view.log_scroll = 10_000;
        assert!(draw_text(&view).contains("machined: service apid started"));
    }
}
