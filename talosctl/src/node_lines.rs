//! Byte streams from one or several nodes (logs, dmesg) written as whole lines, each prefixed
//! with `NODE: ` when several nodes answer.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// Reassembles each node's chunks into lines.
#[derive(Debug)]
pub struct NodeLines {
    prefix: bool,
    pending: BTreeMap<String, Vec<u8>>,
}

impl NodeLines {
    /// `prefix`: label every line with its node (when more than one node answers).
    pub fn new(prefix: bool) -> Self {
        NodeLines {
            prefix,
            pending: BTreeMap::new(),
        }
    }

    /// Writes the complete lines `bytes` finishes for `node`; keeps the unfinished rest.
    pub fn push(&mut self, node: &str, bytes: &[u8], out: &mut impl Write) -> io::Result<()> {
        if !self.prefix {
            out.write_all(bytes)?;
            return out.flush();
        }
        let pending = self.pending.entry(node.to_string()).or_default();
        pending.extend_from_slice(bytes);
        let Some(end) = pending.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        let rest = pending.split_off(end + 1);
        let complete = std::mem::replace(pending, rest);
        for line in complete.split_inclusive(|&b| b == b'\n') {
            write!(out, "{node}: ")?;
            out.write_all(line)?;
        }
        out.flush()
    }

    /// Writes every node's unfinished last line, ended with a newline.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        for (node, rest) in std::mem::take(&mut self.pending) {
            if !rest.is_empty() {
                write!(out, "{node}: ")?;
                out.write_all(&rest)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_passes_bytes_through() {
        let mut out = Vec::new();
        let mut lines = NodeLines::new(false);
        lines.push("a", b"hello wo", &mut out).expect("write");
        lines.push("a", b"rld\n", &mut out).expect("write");
        lines.finish(&mut out).expect("write");
        assert_eq!(out, b"hello world\n");
    }

    #[test]
    fn several_nodes_get_whole_prefixed_lines() {
        let mut out = Vec::new();
        let mut lines = NodeLines::new(true);
        lines
            .push("10.5.0.2", b"first\nsec", &mut out)
            .expect("write");
        lines.push("10.5.0.3", b"other\n", &mut out).expect("write");
        lines
            .push("10.5.0.2", b"ond\nunfinished", &mut out)
            .expect("write");
        lines.finish(&mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "10.5.0.2: first\n10.5.0.3: other\n10.5.0.2: second\n10.5.0.2: unfinished\n"
        );
    }
}
