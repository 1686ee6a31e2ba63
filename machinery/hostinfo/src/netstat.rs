//! `Netstat`: the socket tables of `/proc/net` and the processes that own their sockets.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::machine::connect_record::{self, State};
use proto::machine::netstat_request::{Filter, L4proto};
use proto::machine::{ConnectRecord, Netstat, NetstatRequest};

use crate::processes::{is_gone, read_unless_gone};
use crate::procfile::{Line, ProcFile};
use crate::{Host, HostInfoError};

/// One `/proc/net` socket table: its file name (also the `l4proto` it is reported as), whether
/// it holds IPv6 addresses, and whether it is TCP (where "listening" is a state).
struct Table {
    name: &'static str,
    ipv6: bool,
    tcp: bool,
}

/// The tables in the order of the request's `l4proto` flags.
const TABLES: [Table; 8] = [
    Table {
        name: "tcp",
        ipv6: false,
        tcp: true,
    },
    Table {
        name: "tcp6",
        ipv6: true,
        tcp: true,
    },
    Table {
        name: "udp",
        ipv6: false,
        tcp: false,
    },
    Table {
        name: "udp6",
        ipv6: true,
        tcp: false,
    },
    Table {
        name: "udplite",
        ipv6: false,
        tcp: false,
    },
    Table {
        name: "udplite6",
        ipv6: true,
        tcp: false,
    },
    Table {
        name: "raw",
        ipv6: false,
        tcp: false,
    },
    Table {
        name: "raw6",
        ipv6: true,
        tcp: false,
    },
];

impl Host {
    /// Lists the sockets of the tables selected by `request.l4proto` (none selected gives an
    /// empty list), filtered by `request.filter`; with `feature.pid`, each socket owned by a
    /// process names it (the lowest pid holding it). Tables the kernel does not have (no IPv6,
    /// no UDP-Lite) are skipped. Only the host network namespace is supported.
    pub fn netstat(&self, request: &NetstatRequest) -> Result<Netstat, HostInfoError> {
        if request
            .netns
            .as_ref()
            .is_some_and(|netns| netns.allnetns || !netns.netns.is_empty())
        {
            return Err(HostInfoError::NetnsUnsupported);
        }
        let filter = Filter::try_from(request.filter)
            .map_err(|_| HostInfoError::UnknownNetstatFilter(request.filter))?;
        let selected = selected_tables(&request.l4proto.unwrap_or_default());
        let owners = match request.feature {
            Some(feature) if feature.pid => Some(self.socket_owners()?),
            _ => None,
        };

        let mut records = Vec::new();
        for table in TABLES
            .iter()
            .zip(selected)
            .filter_map(|(t, on)| on.then_some(t))
        {
            let file = match ProcFile::read(self.proc_path("net").join(table.name)) {
                Ok(file) => file,
                Err(HostInfoError::Read { source, .. })
                    if source.kind() == io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(error) => return Err(error),
            };
            // The first line names the columns.
            for line in file.lines().skip(1) {
                if line.text.trim().is_empty() {
                    continue;
                }
                let mut record = parse_record(&line, table)?;
                if !wanted(&record, table, filter) {
                    continue;
                }
                if let Some(owner) = owners.as_ref().and_then(|o| o.get(&record.inode)) {
                    record.process = Some(owner.clone());
                }
                records.push(record);
            }
        }
        Ok(Netstat {
            metadata: None,
            connectrecord: records,
        })
    }

    /// Maps socket inodes to the process holding them, from the `socket:[inode]` links in
    /// `/proc/[pid]/fd`. Processes that exit or hide their fds are left out.
    fn socket_owners(&self) -> Result<HashMap<u64, connect_record::Process>, HostInfoError> {
        let mut owners = HashMap::new();
        for (pid, dir) in self.pid_dirs()? {
            let Ok(fds) = fs::read_dir(dir.join("fd")) else {
                continue;
            };
            let inodes: Vec<u64> = fds
                .filter_map(Result::ok)
                .filter_map(|fd| fs::read_link(fd.path()).ok())
                .filter_map(|target| socket_inode(&target.to_string_lossy()))
                .collect();
            if inodes.is_empty() {
                continue;
            }
            let name = match read_unless_gone(dir.join("comm")) {
                Ok(Some(comm)) => comm.text().trim_end().to_owned(),
                Ok(None) => continue,
                Err(HostInfoError::Read { source, .. }) if !is_gone(&source) => String::new(),
                Err(error) => return Err(error),
            };
            let Ok(pid) = u32::try_from(pid) else {
                continue;
            };
            for inode in inodes {
                owners
                    .entry(inode)
                    .or_insert_with(|| connect_record::Process {
                        pid,
                        name: name.clone(),
                    });
            }
        }
        Ok(owners)
    }
}

/// Which of [`TABLES`] the request selects.
fn selected_tables(l4proto: &L4proto) -> [bool; 8] {
    [
        l4proto.tcp,
        l4proto.tcp6,
        l4proto.udp,
        l4proto.udp6,
        l4proto.udplite,
        l4proto.udplite6,
        l4proto.raw,
        l4proto.raw6,
    ]
}

/// The inode of an fd link target `socket:[12345]`.
fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Whether `record` passes the request's filter. Listening means the TCP LISTEN state, or for
/// the connectionless protocols no remote end; connected means a remote end and not LISTEN.
fn wanted(record: &ConnectRecord, table: &Table, filter: Filter) -> bool {
    let no_remote = record.remoteport == 0
        && record
            .remoteip
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
    let listening = if table.tcp {
        record.state == State::Listen as i32
    } else {
        no_remote
    };
    match filter {
        Filter::All => true,
        Filter::Listening => listening,
        Filter::Connected => !listening && !no_remote,
    }
}

/// One socket line:
/// `sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode [ref pointer ...]`.
fn parse_record(line: &Line<'_>, table: &Table) -> Result<ConnectRecord, HostInfoError> {
    let words: Vec<&str> = line.text.split_whitespace().collect();
    if words.len() < 10 {
        return Err(line.malformed(format!("expected at least 10 columns, got {}", words.len())));
    }
    let (localip, localport) = parse_endpoint(line, "local_address", words[1], table.ipv6)?;
    let (remoteip, remoteport) = parse_endpoint(line, "rem_address", words[2], table.ipv6)?;
    let state = line.parse_hex("st", words[3])?;
    let (txqueue, rxqueue) = split_pair(line, "tx_queue:rx_queue", words[4])?;
    let (tr, timerwhen) = split_pair(line, "tr:tm->when", words[5])?;
    let small = |field: &str, value: u64| {
        i32::try_from(value).map_err(|_| line.malformed(format!("{field}: {value} is too large")))
    };
    Ok(ConnectRecord {
        l4proto: table.name.to_owned(),
        localip,
        localport,
        remoteip,
        remoteport,
        state: State::try_from(small("st", state)?).unwrap_or(State::Reserved) as i32,
        txqueue,
        rxqueue,
        tr: small("tr", tr)?,
        timerwhen,
        retrnsmt: line.parse_hex("retrnsmt", words[6])?,
        uid: line.parse("uid", words[7])?,
        timeout: line.parse("timeout", words[8])?,
        inode: line.parse("inode", words[9])?,
        r#ref: words
            .get(10)
            .map_or(Ok(0), |value| line.parse("ref", value))?,
        pointer: words
            .get(11)
            .map_or(Ok(0), |value| line.parse_hex("pointer", value))?,
        process: None,
        netns: String::new(),
    })
}

/// Two hexadecimal numbers joined by a colon.
fn split_pair(line: &Line<'_>, field: &str, value: &str) -> Result<(u64, u64), HostInfoError> {
    let (first, second) = value
        .split_once(':')
        .ok_or_else(|| line.malformed(format!("{field}: {value:?} has no ':'")))?;
    Ok((
        line.parse_hex(field, first)?,
        line.parse_hex(field, second)?,
    ))
}

/// `ADDR:PORT` in the kernel's hex notation, the address rendered the way Go's `net.IP` prints
/// it (IPv4-mapped IPv6 addresses as dotted IPv4).
fn parse_endpoint(
    line: &Line<'_>,
    field: &str,
    value: &str,
    ipv6: bool,
) -> Result<(String, u32), HostInfoError> {
    let (address, port) = value
        .split_once(':')
        .ok_or_else(|| line.malformed(format!("{field}: {value:?} has no port")))?;
    let port = u32::try_from(line.parse_hex(field, port)?)
        .map_err(|_| line.malformed(format!("{field}: port {port:?} is too large")))?;
    let expected_digits = if ipv6 { 32 } else { 8 };
    if address.len() != expected_digits || !address.is_ascii() {
        return Err(line.malformed(format!(
            "{field}: {address:?} is not a {expected_digits}-digit address"
        )));
    }
    // The kernel prints each 32-bit word of the network-order address as a native integer.
    let mut bytes = Vec::with_capacity(16);
    for word in 0..address.len() / 8 {
        let digits = &address[word * 8..word * 8 + 8];
        let value = u32::try_from(line.parse_hex(field, digits)?)
            .map_err(|_| line.malformed(format!("{field}: {digits:?} is not a 32-bit word")))?;
        bytes.extend_from_slice(&value.to_ne_bytes());
    }
    let ip = match <[u8; 16]>::try_from(bytes.as_slice()) {
        Ok(octets) => {
            let ip = Ipv6Addr::from(octets);
            ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4)
        }
        Err(_) => {
            let octets = <[u8; 4]>::try_from(bytes.as_slice())
                .map_err(|_| line.malformed(format!("{field}: {address:?} is not an address")))?;
            IpAddr::V4(Ipv4Addr::from(octets))
        }
    };
    Ok((ip.to_string(), port))
}
