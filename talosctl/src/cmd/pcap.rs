//! `talosctl pcap`: a packet capture on one node's interface. With `-o FILE` (`-` for stdout)
//! the pcap stream is written as it arrives (it opens in tcpdump and Wireshark); without, each
//! packet is printed as a line (time, protocol, addresses, length). `--bpf-filter` is compiled
//! here ([`crate::bpf`]) and sent as instructions, as upstream's client does; `--duration`
//! ends the capture, otherwise it runs until interrupted.

use apiclient::ApiClientError;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use proto::machine::{BpfInstruction, PacketCaptureRequest};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::humanize::parse_go_duration;

#[derive(Debug, Args)]
pub struct PcapArgs {
    /// Interface name for packet capture
    #[arg(short = 'i', long, default_value = "eth0")]
    pub interface: String,
    /// Enable promiscuous mode
    #[arg(long)]
    pub promiscuous: bool,
    /// Limit the number of bytes captured for each packet
    #[arg(short = 's', long, default_value_t = 65536)]
    pub snaplen: u32,
    /// Write pcap output to a file ('-' for stdout); without it, packets are printed as text
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// BPF filter to apply, tcpdump-like syntax
    #[arg(long, default_value = "")]
    pub bpf_filter: String,
    /// Duration of the capture (e.g. 10s); until interrupted by default
    #[arg(long)]
    pub duration: Option<String>,
}

pub fn run(args: PcapArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let duration = args
        .duration
        .as_deref()
        .map(parse_go_duration)
        .transpose()?;
    let filter = crate::bpf::compile(&args.bpf_filter, args.snaplen)?;
    let mut sink = Sink::open(args.output.as_ref())?;
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("pcap")?;
        let target = &session.targets()[0];
        let request = target.request(PacketCaptureRequest {
            interface: args.interface.clone(),
            promiscuous: args.promiscuous,
            snap_len: args.snaplen,
            bpf_filter: filter
                .iter()
                .map(|i| BpfInstruction {
                    op: u32::from(i.code),
                    jt: u32::from(i.jt),
                    jf: u32::from(i.jf),
                    k: i.k,
                })
                .collect(),
        })?;
        let capture = async {
            let mut stream = target
                .machine()
                .packet_capture(request)
                .await
                .map_err(|s| anyhow::anyhow!("error from node: {}", ApiClientError::from(s)))?
                .into_inner();
            while let Some(data) = stream
                .message()
                .await
                .map_err(|s| anyhow::anyhow!("capture ended: {}", ApiClientError::from(s)))?
            {
                sink.write(&data.bytes)?;
            }
            anyhow::Ok(())
        };
        match duration {
            Some(duration) => match tokio::time::timeout(duration, capture).await {
                Ok(result) => result,
                Err(_elapsed) => Ok(()),
            },
            None => capture.await,
        }
    })
}

/// Where the stream goes: pcap bytes to a file or stdout, or packets as text.
enum Sink {
    Pcap(Box<dyn std::io::Write>),
    Text { pending: Vec<u8>, header_seen: bool },
}

impl Sink {
    fn open(output: Option<&PathBuf>) -> anyhow::Result<Sink> {
        Ok(match output {
            Some(path) if path.as_os_str() == "-" => Sink::Pcap(Box::new(std::io::stdout())),
            Some(path) => Sink::Pcap(Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            )),
            None => Sink::Text {
                pending: Vec::new(),
                header_seen: false,
            },
        })
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Sink::Pcap(out) => {
                out.write_all(bytes)?;
                out.flush()?;
            }
            Sink::Text {
                pending,
                header_seen,
            } => {
                pending.extend_from_slice(bytes);
                if !*header_seen && pending.len() >= 24 {
                    pending.drain(..24);
                    *header_seen = true;
                }
                while *header_seen && pending.len() >= 16 {
                    let field = |at: usize| {
                        u32::from_le_bytes([
                            pending[at],
                            pending[at + 1],
                            pending[at + 2],
                            pending[at + 3],
                        ])
                    };
                    let (seconds, micros, captured, length) =
                        (field(0), field(4), field(8) as usize, field(12));
                    if pending.len() < 16 + captured {
                        break;
                    }
                    let frame: Vec<u8> = pending.drain(..16 + captured).skip(16).collect();
                    println!("{}", describe(seconds, micros, &frame, length));
                }
            }
        }
        Ok(())
    }
}

/// `12:00:01.000123 IPv4 10.0.0.1 > 10.0.0.2: ICMP, length 98`.
fn describe(seconds: u32, micros: u32, frame: &[u8], length: u32) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(i64::from(seconds))
        .map(|t| {
            format!(
                "{:02}:{:02}:{:02}.{micros:06}",
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default();
    let ethertype = frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let what = match ethertype {
        Some(0x0800) if frame.len() >= 34 => {
            let protocol = match frame[23] {
                1 => "ICMP".to_string(),
                6 => "TCP".to_string(),
                17 => "UDP".to_string(),
                other => format!("proto {other}"),
            };
            let address = |at: usize| {
                std::net::Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3])
            };
            format!("IPv4 {} > {}: {protocol}", address(26), address(30))
        }
        Some(0x86dd) => "IPv6".to_string(),
        Some(0x0806) => "ARP".to_string(),
        Some(other) => format!("ethertype 0x{other:04x}"),
        None => "short frame".to_string(),
    };
    format!("{time} {what}, length {length}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_output_names_ipv4_protocols() {
        let mut frame = vec![0u8; 34];
        frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        frame[23] = 1;
        frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
        frame[30..34].copy_from_slice(&[10, 0, 0, 2]);
        let line = describe(3661, 42, &frame, 98);
        assert_eq!(
            line,
            "01:01:01.000042 IPv4 10.0.0.1 > 10.0.0.2: ICMP, length 98"
        );
    }
}
