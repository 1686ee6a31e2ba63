//! Stamping `common.Metadata` into replies without decoding them (reference §1.3, §2.4).
//!
//! Every classic reply element starts with `common.Metadata metadata = 1`, and a protobuf
//! decoder merges an embedded message field wherever it appears in the bytes. So apid appends a
//! serialized field 1 (`Metadata{hostname}`, or `Metadata{hostname, error, status}` for a failed
//! node) to each element, touching only tags and lengths.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Wire type of length-delimited fields.
const LENGTH_DELIMITED: u64 = 2;
/// Key of field 1, length-delimited: the `messages` list of a reply, the `metadata` of an
/// element, the `hostname` of `Metadata`.
const FIELD_1_BYTES: u64 = 1 << 3 | LENGTH_DELIMITED;
const FIELD_2_BYTES: u64 = 2 << 3 | LENGTH_DELIMITED;
const FIELD_3_BYTES: u64 = 3 << 3 | LENGTH_DELIMITED;
/// Key of field 1, varint (`google.rpc.Status.code`).
const FIELD_1_VARINT: u64 = 1 << 3;

/// A reply that is not a valid protobuf message.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed reply at byte {offset}: {reason}")]
pub(crate) struct MalformedReply {
    offset: usize,
    reason: &'static str,
}

/// Serialized field 1 = `Metadata{hostname}`: what apid appends to each element or streamed
/// message from `hostname`.
pub(crate) fn hostname_field(hostname: &str) -> Bytes {
    let mut metadata = BytesMut::new();
    put_bytes_field(&mut metadata, FIELD_1_BYTES, hostname.as_bytes());
    let mut field = BytesMut::with_capacity(metadata.len() + 6);
    put_bytes_field(&mut field, FIELD_1_BYTES, &metadata);
    field.freeze()
}

/// Serialized field 1 = `Metadata{hostname, error, status{code, message}}` for a node that
/// failed: this is also a complete `common.Empty`, the streamed message of a failed node.
pub(crate) fn failure_field(hostname: &str, code: i32, message: &str, error: &str) -> Bytes {
    let mut status = BytesMut::new();
    if code != 0 {
        put_varint(&mut status, FIELD_1_VARINT);
        // int32 is encoded as a sign-extended 64-bit varint.
        put_varint(&mut status, i64::from(code) as u64);
    }
    if !message.is_empty() {
        put_bytes_field(&mut status, FIELD_2_BYTES, message.as_bytes());
    }
    let mut metadata = BytesMut::new();
    put_bytes_field(&mut metadata, FIELD_1_BYTES, hostname.as_bytes());
    put_bytes_field(&mut metadata, FIELD_2_BYTES, error.as_bytes());
    put_bytes_field(&mut metadata, FIELD_3_BYTES, &status);
    let mut field = BytesMut::with_capacity(metadata.len() + 6);
    put_bytes_field(&mut field, FIELD_1_BYTES, &metadata);
    field.freeze()
}

/// A unary reply of a failed node: `EmptyResponse{messages: [Empty{metadata}]}`, with
/// `failure` from [`failure_field`].
pub(crate) fn failure_reply(failure: &[u8], out: &mut BytesMut) {
    put_bytes_field(out, FIELD_1_BYTES, failure);
}

/// Appends `reply` to `out` with `stamp` (from [`hostname_field`]) appended to every element of
/// its `messages` field (field 1); any other field is copied unchanged.
pub(crate) fn stamp_reply(
    reply: &[u8],
    stamp: &[u8],
    out: &mut BytesMut,
) -> Result<(), MalformedReply> {
    let mut cursor = Cursor {
        bytes: reply,
        offset: 0,
    };
    out.reserve(reply.len() + 8 * stamp.len());
    while !cursor.done() {
        let field_start = cursor.offset;
        let key = cursor.varint()?;
        match key & 7 {
            LENGTH_DELIMITED => {
                let element = cursor.length_delimited()?;
                if key == FIELD_1_BYTES {
                    put_varint(out, key);
                    put_varint(out, (element.len() + stamp.len()) as u64);
                    out.put_slice(element);
                    out.put_slice(stamp);
                } else {
                    out.put_slice(&reply[field_start..cursor.offset]);
                }
            }
            0 => {
                cursor.varint()?;
                out.put_slice(&reply[field_start..cursor.offset]);
            }
            1 => {
                cursor.skip(8)?;
                out.put_slice(&reply[field_start..cursor.offset]);
            }
            5 => {
                cursor.skip(4)?;
                out.put_slice(&reply[field_start..cursor.offset]);
            }
            _ => return Err(cursor.error("unsupported wire type")),
        }
    }
    Ok(())
}

fn put_bytes_field(out: &mut BytesMut, key: u64, value: &[u8]) {
    put_varint(out, key);
    put_varint(out, value.len() as u64);
    out.put_slice(value);
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

struct Cursor<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.offset >= self.bytes.len()
    }

    fn error(&self, reason: &'static str) -> MalformedReply {
        MalformedReply {
            offset: self.offset,
            reason,
        }
    }

    fn varint(&mut self) -> Result<u64, MalformedReply> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.offset)
                .ok_or_else(|| self.error("truncated varint"))?;
            self.offset += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    fn skip(&mut self, count: usize) -> Result<&'a [u8], MalformedReply> {
        let end = self
            .offset
            .checked_add(count)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("field runs past the end"))?;
        let bytes = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(bytes)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], MalformedReply> {
        let length = usize::try_from(self.varint()?).map_err(|_| self.error("length too large"))?;
        self.skip(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use proto::common::{Empty, EmptyResponse, Metadata};
    use proto::machine::{Version, VersionInfo, VersionResponse};

    fn version_reply(tags: &[&str]) -> Vec<u8> {
        VersionResponse {
            messages: tags
                .iter()
                .map(|tag| Version {
                    version: Some(VersionInfo {
                        tag: (*tag).to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
        }
        .encode_to_vec()
    }

    #[test]
    fn every_element_gets_the_hostname_and_keeps_its_payload() {
        let reply = version_reply(&["v1.14.0", "v1.13.2"]);
        let mut out = BytesMut::new();
        stamp_reply(&reply, &hostname_field("10.5.0.2"), &mut out).expect("valid reply");
        let decoded = VersionResponse::decode(out.freeze()).expect("still valid protobuf");
        assert_eq!(decoded.messages.len(), 2);
        for (element, tag) in decoded.messages.iter().zip(["v1.14.0", "v1.13.2"]) {
            assert_eq!(
                element.metadata.as_ref().map(|m| m.hostname.as_str()),
                Some("10.5.0.2")
            );
            assert_eq!(element.version.as_ref().map(|v| v.tag.as_str()), Some(tag));
        }
    }

    #[test]
    fn concatenated_replies_stay_one_valid_reply() {
        let mut out = BytesMut::new();
        stamp_reply(&version_reply(&["a"]), &hostname_field("n1"), &mut out).expect("valid");
        let failure = failure_field(
            "n2",
            14,
            "gone",
            "rpc error: code = Unavailable desc = gone",
        );
        failure_reply(&failure, &mut out);
        // Decoded as EmptyResponse the failure and the success are both elements.
        let decoded = EmptyResponse::decode(out.clone().freeze()).expect("valid");
        let hosts: Vec<_> = decoded
            .messages
            .iter()
            .map(|m| m.metadata.clone().unwrap_or_default())
            .collect();
        assert_eq!(hosts[0].hostname, "n1");
        assert_eq!(hosts[0].error, "");
        assert_eq!(hosts[1].hostname, "n2");
        assert_eq!(hosts[1].error, "rpc error: code = Unavailable desc = gone");
        let status = hosts[1].status.clone().expect("status set");
        assert_eq!((status.code, status.message.as_str()), (14, "gone"));
        // And as the real reply type.
        let decoded = VersionResponse::decode(out.freeze()).expect("valid");
        assert_eq!(decoded.messages.len(), 2);
    }

    #[test]
    fn a_streamed_message_gains_metadata_and_a_failure_is_an_empty() {
        let data = proto::common::Data {
            metadata: None,
            bytes: b"log line\n".to_vec(),
        };
        let mut message = BytesMut::from(&data.encode_to_vec()[..]);
        message.put_slice(&hostname_field("node-a"));
        let decoded = proto::common::Data::decode(message.freeze()).expect("valid");
        assert_eq!(decoded.bytes, b"log line\n");
        assert_eq!(
            decoded.metadata.map(|m| m.hostname),
            Some("node-a".to_owned())
        );

        let failure = Empty::decode(failure_field("node-b", 7, "no", "denied")).expect("valid");
        let Metadata {
            hostname,
            error,
            status,
        } = failure.metadata.expect("metadata");
        assert_eq!((hostname.as_str(), error.as_str()), ("node-b", "denied"));
        assert_eq!(status.map(|s| s.code), Some(7));
    }

    #[test]
    fn long_elements_get_multi_byte_lengths_rewritten() {
        let tag = "x".repeat(200);
        let reply = version_reply(&[&tag]);
        let mut out = BytesMut::new();
        stamp_reply(&reply, &hostname_field(&"h".repeat(130)), &mut out).expect("valid");
        let decoded = VersionResponse::decode(out.freeze()).expect("valid");
        assert_eq!(
            decoded.messages[0].version.as_ref().map(|v| v.tag.len()),
            Some(200)
        );
        assert_eq!(
            decoded.messages[0]
                .metadata
                .as_ref()
                .map(|m| m.hostname.len()),
            Some(130)
        );
    }

    #[test]
    fn empty_reply_contributes_nothing_and_garbage_is_refused() {
        let mut out = BytesMut::new();
        stamp_reply(&[], &hostname_field("n"), &mut out).expect("empty is valid");
        assert!(out.is_empty());
        assert_eq!(
            stamp_reply(&[0x0a, 0x05, 1, 2], &hostname_field("n"), &mut out),
            Err(MalformedReply {
                offset: 2,
                reason: "field runs past the end"
            })
        );
        assert!(stamp_reply(&[0x0b], &hostname_field("n"), &mut out).is_err());
    }
}
