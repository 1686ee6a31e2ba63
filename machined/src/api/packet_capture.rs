//! `MachineService/PacketCapture`: packets of one interface as a pcap stream (the global header,
//! then a record per packet), as upstream sends it. The capture runs until the client goes away.
//!
//! The client's classic BPF program (upstream's client compiles the filter expression) is
//! attached before the socket is bound, so nothing unfiltered is ever read; the kernel checks
//! the program and refuses one that is malformed. Bounded: at most [`MAX_CAPTURES`] at once,
//! [`MAX_INSTRUCTIONS`] instructions, [`MAX_SNAP_LEN`] bytes per packet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use proto::common::Data;
use proto::machine::{BpfInstruction, PacketCaptureRequest};
use tokio::io::unix::AsyncFd;
use tonic::codegen::BoxStream;

use crate::error::MachinedError;
use crate::packet_socket::CaptureSocket;

/// Captures running at once on the node.
pub const MAX_CAPTURES: usize = 4;
/// The kernel's own limit on a classic BPF program.
pub const MAX_INSTRUCTIONS: usize = 4096;
/// Largest snapshot length; 0 asks for upstream's default.
pub const MAX_SNAP_LEN: u32 = 262_144;
const DEFAULT_SNAP_LEN: u32 = 65_536;
/// pcap's link type for Ethernet (Linux gives loopback an Ethernet header too).
const LINKTYPE_ETHERNET: u32 = 1;

static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Holds one of the [`MAX_CAPTURES`] slots while the capture's stream lives.
struct Slot;

impl Slot {
    fn take() -> Result<Slot, MachinedError> {
        let taken = RUNNING.fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
            (running < MAX_CAPTURES).then_some(running + 1)
        });
        taken.map(|_| Slot).map_err(|_| {
            MachinedError::ResourceExhausted(format!(
                "{MAX_CAPTURES} packet captures are already running"
            ))
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn capture(request: PacketCaptureRequest) -> Result<BoxStream<Data>, MachinedError> {
    let snap_len = match request.snap_len {
        0 => DEFAULT_SNAP_LEN,
        n if n > MAX_SNAP_LEN => {
            return Err(MachinedError::InvalidArgument(format!(
                "snap_len {n}: at most {MAX_SNAP_LEN}"
            )));
        }
        n => n,
    };
    if request.bpf_filter.len() > MAX_INSTRUCTIONS {
        return Err(MachinedError::InvalidArgument(format!(
            "bpf_filter: {} instructions, at most {MAX_INSTRUCTIONS}",
            request.bpf_filter.len()
        )));
    }
    let program = program(&request.bpf_filter)?;
    let slot = Slot::take()?;
    let socket = CaptureSocket::open(&request.interface, request.promiscuous, &program)?;
    let socket = register(socket).map_err(|error| {
        MachinedError::Internal(format!("registering the capture socket: {error}"))
    })?;
    let state = Capture {
        socket,
        buffer: vec![0; snap_len as usize],
        header: Some(global_header(snap_len)),
        _slot: slot,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        state,
        |mut state| async move {
            let item = state.next().await;
            Some((item, state))
        },
    )))
}

/// The request's instructions as the kernel takes them; fields that do not fit are refused.
fn program(instructions: &[BpfInstruction]) -> Result<Vec<nix::libc::sock_filter>, MachinedError> {
    instructions
        .iter()
        .enumerate()
        .map(|(index, i)| {
            let bad = |field: &str| {
                MachinedError::InvalidArgument(format!("bpf_filter[{index}].{field}: out of range"))
            };
            Ok(nix::libc::sock_filter {
                code: u16::try_from(i.op).map_err(|_| bad("op"))?,
                jt: u8::try_from(i.jt).map_err(|_| bad("jt"))?,
                jf: u8::try_from(i.jf).map_err(|_| bad("jf"))?,
                k: i.k,
            })
        })
        .collect()
}

/// `AsyncFd::new` is deprecated (a generic descriptor could change behind the registration);
/// the socket's descriptor never changes, and the replacement is `unsafe`.
#[allow(deprecated)]
fn register(socket: CaptureSocket) -> std::io::Result<AsyncFd<CaptureSocket>> {
    AsyncFd::new(socket)
}

struct Capture {
    socket: AsyncFd<CaptureSocket>,
    buffer: Vec<u8>,
    header: Option<Vec<u8>>,
    _slot: Slot,
}

impl Capture {
    async fn next(&mut self) -> Result<Data, tonic::Status> {
        if let Some(header) = self.header.take() {
            return Ok(Data {
                metadata: None,
                bytes: header,
            });
        }
        loop {
            let mut ready = self
                .socket
                .readable()
                .await
                .map_err(|e| tonic::Status::internal(format!("capture socket: {e}")))?;
            let received = ready.try_io(|socket| socket.get_ref().receive(&mut self.buffer));
            match received {
                Ok(Ok(Some(length))) => return Ok(self.record(length)),
                Ok(Ok(None)) => continue,
                Ok(Err(error)) => {
                    return Err(tonic::Status::internal(format!("capture socket: {error}")));
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// A record for a packet of `length` bytes, of which the buffer holds the first ones.
    fn record(&self, length: usize) -> Data {
        let captured = length.min(self.buffer.len());
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(16 + captured);
        for field in [
            since_epoch.as_secs() as u32,
            since_epoch.subsec_micros(),
            captured as u32,
            u32::try_from(length).unwrap_or(u32::MAX),
        ] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        bytes.extend_from_slice(&self.buffer[..captured]);
        Data {
            metadata: None,
            bytes,
        }
    }
}

/// pcap's file header: microsecond timestamps, version 2.4, Ethernet.
fn global_header(snap_len: u32) -> Vec<u8> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&snap_len.to_le_bytes());
    header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_bounded_before_anything_opens() {
        let request = |snap_len, bpf_filter| PacketCaptureRequest {
            interface: "lo".into(),
            promiscuous: false,
            snap_len,
            bpf_filter,
        };
        let message = |result: Result<BoxStream<Data>, MachinedError>| match result {
            Err(error) => error.to_string(),
            Ok(_) => panic!("accepted"),
        };
        assert!(message(capture(request(MAX_SNAP_LEN + 1, vec![]))).contains("at most"));
        let long = vec![BpfInstruction::default(); MAX_INSTRUCTIONS + 1];
        assert!(message(capture(request(0, long))).contains("instructions"));
        let wide = vec![BpfInstruction {
            op: 0x1_0000,
            ..Default::default()
        }];
        assert!(message(capture(request(0, wide))).contains("bpf_filter[0].op"));
    }

    #[test]
    fn the_header_is_pcap_2_4_ethernet() {
        let header = global_header(65_536);
        assert_eq!(header.len(), 24);
        assert_eq!(&header[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&header[20..], &1u32.to_le_bytes());
    }
}
