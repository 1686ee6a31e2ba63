//! A cloud provider's metadata service for a VM: an HTTP/1.0 server on a loopback address of
//! the test's own, answering from a function of the request and recording every request
//! (with when it came). QEMU's user networking reaches it through a `guestfwd` command,
//! [`MetadataServer::relay_command`]: a bash script started for each guest connection that
//! copies the connection to the server and back (`/dev/tcp`), since a guestfwd chardev would
//! carry one connection only.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest request head read.
const MAX_HEAD: usize = 64 << 10;
/// Largest request body read.
const MAX_BODY: usize = 1 << 20;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `METHOD target`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// An answer: status, extra headers, body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// How a provider answers.
pub type Answer = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct MetadataServer {
    pub address: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl MetadataServer {
    /// Serves `answer` on `ip` (a free port).
    pub fn start(ip: Ipv4Addr, answer: Box<Answer>) -> std::io::Result<MetadataServer> {
        let listener = TcpListener::bind((ip, 0))?;
        let address = listener.local_addr()?;
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut connection) = connection else {
                    continue;
                };
                let _ = connection.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(request) = read_request(&mut connection) else {
                    continue;
                };
                let reply = answer(&request);
                seen.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(request);
                let _ = write_reply(&mut connection, &reply);
            }
        });
        Ok(MetadataServer {
            address,
            requests,
            stop,
        })
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Writes the relay script into `dir`; the command for [`qemu::HostService`] (no commas).
    pub fn relay_command(&self, dir: &Path) -> std::io::Result<String> {
        let script = dir.join("metadata-relay.sh");
        // Guest → server in the background (its stdin named: bash gives background commands
        // /dev/null otherwise), server → guest in front: the server closes after its answer
        // (HTTP/1.0), then the copy the other way is stopped and the script ends, which
        // closes the guest's connection. stderr is the connection too: keep it quiet.
        std::fs::write(
            &script,
            format!(
                "exec 2>/dev/null\nexec 3<>/dev/tcp/{}/{} || exit 1\ncat <&0 >&3 &\ncat <&3\nkill $!\n",
                self.address.ip(),
                self.address.port()
            ),
        )?;
        Ok(format!("/bin/bash {}", script.display()))
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
    }
}

/// The request on `connection`: head, then a body of its Content-Length (bounded).
fn read_request(connection: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_HEAD || connection.read(&mut byte).ok()? != 1 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(MAX_BODY)];
    connection.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
        at: Instant::now(),
    })
}

fn write_reply(connection: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.0 {} Answer\r\nContent-Length: {}\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    connection.write_all(head.as_bytes())?;
    connection.write_all(&reply.body)?;
    connection.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay, run as QEMU runs it (the connection on its stdin and stdout), carries a
    /// request to the server and its answer back, and ends when the server has answered.
    #[test]
    fn the_relay_carries_one_exchange_and_ends() {
        let server = MetadataServer::start(
            Ipv4Addr::new(127, 0, 91, 1),
            Box::new(|request: &Request| match request.header("x-token") {
                Some("t") => Reply::ok(format!("you asked {}", request.target)),
                _ => Reply::status(401),
            }),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let command = server.relay_command(dir.path()).unwrap();
        let mut words = command.split(' ');
        let mut relay = std::process::Command::new(words.next().unwrap())
            .args(words)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The guest does not close its side: the relay must end by itself.
        let mut stdin = relay.stdin.take().unwrap();
        stdin
            .write_all(b"GET /latest/meta-data/x HTTP/1.0\r\nX-Token: t\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        relay
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut answer)
            .unwrap();
        assert!(relay.wait().unwrap().success());
        assert!(answer.starts_with("HTTP/1.0 200 "), "{answer}");
        assert!(
            answer.ends_with("you asked /latest/meta-data/x"),
            "{answer}"
        );
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].line(), "GET /latest/meta-data/x");
        drop(stdin);
    }
}
