//! `talosctl netstat` (alias `ss`): sockets of the node, like `netstat`.

use clap::Args;
use proto::machine::netstat_request::{Feature, Filter, L4proto, NetNs};
use proto::machine::{ConnectRecord, NetstatRequest, connect_record};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::output::table;

#[derive(Debug, Args)]
pub struct NetstatArgs {
    /// Display all sockets states (default: connected)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Display listening server sockets
    #[arg(short = 'l', long)]
    pub listening: bool,
    /// Display process using the socket
    #[arg(short = 'p', long)]
    pub programs: bool,
    /// Display other/more information
    #[arg(short = 'x', long)]
    pub extend: bool,
    /// Show sockets used by Kubernetes pods
    #[arg(short = 'k', long)]
    pub pods: bool,
    /// Display only TCP sockets
    #[arg(short = 't', long)]
    pub tcp: bool,
    /// Display only UDP sockets
    #[arg(short = 'u', long)]
    pub udp: bool,
    /// Display only UDPLite sockets
    #[arg(short = 'U', long)]
    pub udplite: bool,
    /// Display only RAW sockets
    #[arg(short = 'w', long)]
    pub raw: bool,
    /// Display only ipv4 sockets
    #[arg(short = '4', long)]
    pub ipv4: bool,
    /// Display only ipv6 sockets
    #[arg(short = '6', long)]
    pub ipv6: bool,
}

fn netstat_request(args: &NetstatArgs) -> NetstatRequest {
    let filter = if args.all {
        Filter::All
    } else if args.listening {
        Filter::Listening
    } else {
        Filter::Connected
    };
    let any_protocol = !(args.tcp || args.udp || args.udplite || args.raw);
    let any_family = !(args.ipv4 || args.ipv6);
    let v4 = any_family || args.ipv4;
    let v6 = any_family || args.ipv6;
    let tcp = any_protocol || args.tcp;
    let udp = any_protocol || args.udp;
    let udplite = any_protocol || args.udplite;
    let raw = any_protocol || args.raw;
    NetstatRequest {
        filter: filter as i32,
        feature: Some(Feature { pid: args.programs }),
        l4proto: Some(L4proto {
            tcp: tcp && v4,
            tcp6: tcp && v6,
            udp: udp && v4,
            udp6: udp && v6,
            udplite: udplite && v4,
            udplite6: udplite && v6,
            raw: raw && v4,
            raw6: raw && v6,
        }),
        netns: Some(NetNs {
            hostnetwork: true,
            netns: Vec::new(),
            allnetns: args.pods,
        }),
    }
}

pub fn run(args: NetstatArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let request = netstat_request(&args);
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut records = Vec::new();
        for target in session.targets() {
            let reply = target
                .machine()
                .netstat(target.request(request.clone())?)
                .await;
            for (node, netstat) in
                target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                records.extend(netstat.connectrecord.into_iter().map(|r| (node.clone(), r)));
            }
        }
        print!("{}", records_table(&records, &args));
        failures.finish()
    })
}

/// `ip:port`, IPv6 in brackets, port 0 as `*`.
fn address(ip: &str, port: u32) -> String {
    let port = if port == 0 {
        "*".to_string()
    } else {
        port.to_string()
    };
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn records_table(records: &[(String, ConnectRecord)], args: &NetstatArgs) -> String {
    let mut header = vec![
        "NODE",
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local Address",
        "Foreign Address",
        "State",
    ];
    if args.extend {
        header.extend(["Uid", "Inode"]);
    }
    if args.programs {
        header.push("PID/Program name");
    }
    if args.pods {
        header.push("Netns");
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|(node, r)| {
            let state = connect_record::State::try_from(r.state)
                .map(|s| s.as_str_name().to_string())
                .unwrap_or_else(|_| r.state.to_string());
            let mut row = vec![
                node.clone(),
                r.l4proto.clone(),
                r.rxqueue.to_string(),
                r.txqueue.to_string(),
                address(&r.localip, r.localport),
                address(&r.remoteip, r.remoteport),
                state,
            ];
            if args.extend {
                row.extend([r.uid.to_string(), r.inode.to_string()]);
            }
            if args.programs {
                row.push(match &r.process {
                    Some(p) if p.pid != 0 => format!("{}/{}", p.pid, p.name),
                    _ => "-".to_string(),
                });
            }
            if args.pods {
                row.push(r.netns.clone());
            }
            row
        })
        .collect();
    table(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        netstat: NetstatArgs,
    }

    fn parse(args: &[&str]) -> NetstatArgs {
        Wrapper::parse_from(std::iter::once("netstat").chain(args.iter().copied())).netstat
    }

    #[test]
    fn default_is_connected_sockets_of_every_protocol() {
        let request = netstat_request(&parse(&[]));
        assert_eq!(request.filter, Filter::Connected as i32);
        let l4 = request.l4proto.expect("l4proto");
        assert!(l4.tcp && l4.tcp6 && l4.udp && l4.udp6 && l4.raw && l4.raw6);
    }

    #[test]
    fn protocol_and_family_flags_narrow_the_request() {
        let request = netstat_request(&parse(&["-l", "-t", "-4", "-p"]));
        assert_eq!(request.filter, Filter::Listening as i32);
        assert_eq!(request.feature, Some(Feature { pid: true }));
        let l4 = request.l4proto.expect("l4proto");
        assert!(l4.tcp);
        assert!(!(l4.tcp6 || l4.udp || l4.udp6 || l4.raw || l4.udplite));
        let all = netstat_request(&parse(&["-a", "-u", "-6"]));
        assert_eq!(all.filter, Filter::All as i32);
        let l4 = all.l4proto.expect("l4proto");
        assert!(l4.udp6 && !l4.udp && !l4.tcp6);
    }

    #[test]
    fn records_render_like_netstat() {
        let record = ConnectRecord {
            l4proto: "tcp".into(),
            localip: "0.0.0.0".into(),
            localport: 50000,
            remoteip: "0.0.0.0".into(),
            remoteport: 0,
            state: connect_record::State::Listen as i32,
            process: Some(connect_record::Process {
                pid: 42,
                name: "apid".into(),
            }),
            ..Default::default()
        };
        let v6 = ConnectRecord {
            l4proto: "tcp6".into(),
            localip: "::1".into(),
            localport: 2379,
            remoteip: "::1".into(),
            remoteport: 40000,
            state: connect_record::State::Established as i32,
            rxqueue: 3,
            ..Default::default()
        };
        let text = records_table(
            &[("10.5.0.2".into(), record), ("10.5.0.2".into(), v6)],
            &parse(&["-p"]),
        );
        assert_eq!(
            text,
            "NODE       Proto   Recv-Q   Send-Q   Local Address   Foreign Address   State         PID/Program name\n\
             10.5.0.2   tcp     0        0        0.0.0.0:50000   0.0.0.0:*         LISTEN        42/apid\n\
             10.5.0.2   tcp6    3        0        [::1]:2379      [::1]:40000       ESTABLISHED   -\n"
        );
    }
}
