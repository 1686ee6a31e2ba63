//! HTTP for `talos.config=…` and the metadata services (PID 1, before any service runs):
//! HTTP/1.0, one request per connection, the body read to the end of the connection; `https://`
//! over TLS (rustls) checked against Mozilla's root certificates, built in (the image has no
//! CA bundle), with the clock as it is at boot.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::ServerName;

/// Limit for connecting and for each read.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for a whole answer.
const DEADLINE: Duration = Duration::from_secs(30);
/// Largest body accepted (a machine config is a few tens of KiB).
const MAX_BODY: u64 = 16 << 20;

/// An answer: status code, headers (names in lower case) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The body of `url` when the server answers 200; otherwise what went wrong, in words.
pub fn get(url: &str) -> Result<Vec<u8>, String> {
    let response = request("GET", url, &[], MAX_BODY)?;
    if response.status != 200 {
        return Err(format!("{url}: the server answered {}", response.status));
    }
    Ok(response.body)
}

/// Sends `method` to `url` with `headers` (an empty body); the answer whatever its status,
/// its body at most `max_body` bytes (more is an error).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    max_body: u64,
) -> Result<Response, String> {
    Exchange::public(Source::Any).run(method, url, headers, &[], max_body)
}

/// [`request`] from a privileged source port (below 1024), which some metadata services
/// (Scaleway's user data) ask of a client to tell it is root's.
pub fn request_from_privileged_port(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    max_body: u64,
) -> Result<Response, String> {
    Exchange::public(Source::Privileged).run(method, url, headers, &[], max_body)
}

/// POSTs `body` to `url` with `headers`; the answer as [`request`] gives it.
pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    max_body: u64,
) -> Result<Response, String> {
    Exchange::public(Source::Any).run("POST", url, headers, body, max_body)
}

/// The local port a request is sent from.
#[derive(Clone, Copy)]
enum Source {
    /// Whichever the kernel picks.
    Any,
    /// One of [`PRIVILEGED_PORTS`], starting at a random one (as upstream: 100 to 611).
    Privileged,
}

/// The source ports a privileged request tries.
const PRIVILEGED_PORTS: std::ops::Range<u16> = 100..612;

/// Mozilla's root certificates (the `webpki-roots` crate), which https answers must chain to.
fn public_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        Arc::new(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
    }))
}

/// How a request goes out: from which port, trusting which roots for https.
struct Exchange {
    source: Source,
    roots: Arc<RootCertStore>,
}

impl Exchange {
    /// From `source`, trusting Mozilla's roots.
    fn public(source: Source) -> Self {
        Exchange {
            source,
            roots: public_roots(),
        }
    }

    /// Sends the request; the whole answer, its body at most `max_body` bytes.
    fn run(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        max_body: u64,
    ) -> Result<Response, String> {
        let parsed = url::Url::parse(url).map_err(|error| format!("{url}: {error}"))?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(format!("{url}: {other}:// is neither http:// nor https://")),
        };
        let host = parsed.host_str().ok_or_else(|| format!("{url}: no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let address = (host, port)
            .to_socket_addrs()
            .map_err(|error| format!("{url}: {error}"))?
            .next()
            .ok_or_else(|| format!("{url}: {host} has no address"))?;
        let stream = connect(address, self.source)
            .map_err(|error| format!("{url}: connecting to {address}: {error}"))?;
        let target = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let mut request = format!(
            "{method} {target} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: talos-rs machined\r\n"
        );
        // Anything, unless the caller asks for a type (one Accept header: a second one would
        // be read as `*/*, TYPE`, which lets the server answer its default type).
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("accept"))
        {
            request.push_str("Accept: */*\r\n");
        }
        if method != "GET" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        // The head comes on top of the body: allow 64 KiB for it.
        let limit = max_body.saturating_add(64 << 10);
        let response = if tls {
            let name = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ServerName::from(IpAddr::from(ip)),
                Some(url::Host::Ipv6(ip)) => ServerName::from(IpAddr::from(ip)),
                _ => ServerName::try_from(host.to_string())
                    .map_err(|error| format!("{url}: {host}: {error}"))?,
            };
            self.over_tls(stream, name, &request, limit)
        } else {
            send_and_read(stream.try_clone(), stream, &request, limit)
        }
        .map_err(|problem| format!("{url}: {problem}"))?;
        // Cut at the limit, the answer would look short: say what it is.
        let larger = || format!("{url}: the answer is larger than {max_body} bytes");
        if response.len() as u64 > limit {
            return Err(larger());
        }
        let answer = parse_response(&response).map_err(|problem| format!("{url}: {problem}"))?;
        if answer.body.len() as u64 > max_body {
            return Err(larger());
        }
        Ok(answer)
    }

    /// `request` sent over TLS to `name` on `stream`; the answer's bytes, at most `limit`.
    fn over_tls(
        &self,
        stream: TcpStream,
        name: ServerName<'static>,
        request: &[u8],
        limit: u64,
    ) -> Result<Vec<u8>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS: {error}"))?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_no_client_auth();
        let connection = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|error| format!("TLS: {error}"))?;
        let socket = stream.try_clone();
        send_and_read(
            socket,
            rustls::StreamOwned::new(connection, stream),
            request,
            limit,
        )
    }
}

/// Writes `request` to `stream` and reads the answer, at most `limit` bytes, with the
/// timeouts set on `socket` (the stream's own, or a clone of it under TLS).
fn send_and_read(
    socket: std::io::Result<TcpStream>,
    mut stream: impl Read + Write,
    request: &[u8],
    limit: u64,
) -> Result<Vec<u8>, String> {
    let socket = socket.map_err(|error| error.to_string())?;
    socket
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|error| error.to_string())?;
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|error| format!("sending the request: {error}"))?;
    read_bounded(&mut stream, &socket, limit)
        .map_err(|problem| format!("reading the answer: {problem}"))
}

/// A connection to `address` from `source`. A privileged port already taken (bound, or
/// still in TIME_WAIT towards `address`) gives way to the next one.
fn connect(address: SocketAddr, source: Source) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    use std::hash::{BuildHasher as _, Hasher as _};
    if let Source::Any = source {
        return TcpStream::connect_timeout(&address, TIMEOUT);
    }
    let count = PRIVILEGED_PORTS.len() as u64;
    let start = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % count;
    let unspecified: IpAddr = match address {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let mut last = None;
    for offset in 0..count {
        let port = PRIVILEGED_PORTS.start + ((start + offset) % count) as u16;
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        let attempt = socket
            .bind(&SocketAddr::new(unspecified, port).into())
            .and_then(|()| socket.connect_timeout(&address.into(), TIMEOUT));
        match attempt {
            Ok(()) => return Ok(socket.into()),
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::AddrInUse | ErrorKind::AddrNotAvailable
                ) =>
            {
                last = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or_else(|| ErrorKind::AddrInUse.into()))
}

/// Everything the server sends until it closes, at most `limit` bytes (one more tells that
/// it sent too much) and within [`DEADLINE`] in all, however slowly it trickles.
fn read_bounded(stream: &mut impl Read, socket: &TcpStream, limit: u64) -> Result<Vec<u8>, String> {
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut response = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        let left = deadline
            .checked_duration_since(std::time::Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| format!("no complete answer within {DEADLINE:?}"))?;
        socket
            .set_read_timeout(Some(left.min(TIMEOUT)))
            .map_err(|error| error.to_string())?;
        let read = match stream.read(&mut chunk) {
            // A TLS peer that closes without close_notify: the end (HTTP/1.0 ends at the close;
            // a Content-Length still tells a short answer).
            Err(error) if error.kind() == ErrorKind::UnexpectedEof => 0,
            other => other.map_err(|error| error.to_string())?,
        };
        if read == 0 || response.len() as u64 > limit {
            return Ok(response);
        }
        response.extend_from_slice(&chunk[..read]);
    }
}

/// A whole HTTP/1.x response.
fn parse_response(response: &[u8]) -> Result<Response, String> {
    let end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or("the answer has no end of headers")?;
    let head = String::from_utf8_lossy(&response[..end]);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("the answer has no status: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect();
    let body = &response[end + 4..];
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok());
    let body = match length {
        Some(length) if body.len() < length => {
            return Err(format!(
                "the answer ended after {} of {length} bytes",
                body.len()
            ));
        }
        Some(length) => body[..length].to_vec(),
        None => body.to_vec(),
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn serve_once(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut connection, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = connection.read(&mut request);
            connection.write_all(answer).unwrap();
        });
        format!("http://{address}/configs/node.yaml?x=1")
    }

    #[test]
    fn downloads_the_body_of_a_200_answer() {
        let url = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 18\r\n\r\nversion: v1alpha1\n");
        assert_eq!(get(&url).unwrap(), b"version: v1alpha1\n");
    }

    #[test]
    fn a_privileged_request_comes_from_a_port_below_1024() {
        let listener = TcpListener::bind("127.80.0.2:0").unwrap();
        let address = listener.local_addr().unwrap();
        let peers = std::thread::spawn(move || {
            (0..2)
                .map(|_| {
                    let (mut connection, peer) = listener.accept().unwrap();
                    let mut request = [0u8; 1024];
                    let _ = connection.read(&mut request);
                    connection.write_all(b"HTTP/1.0 200 OK\r\n\r\nok").unwrap();
                    peer.port()
                })
                .collect::<Vec<u16>>()
        });
        let url = format!("http://{address}/user_data/cloud-init");
        let answer = request_from_privileged_port("GET", &url, &[], 16).unwrap();
        assert_eq!(answer.body, b"ok");
        assert_eq!(request("GET", &url, &[], 16).unwrap().body, b"ok");
        let ports = peers.join().unwrap();
        assert!(PRIVILEGED_PORTS.contains(&ports[0]), "{ports:?}");
        assert!(ports[1] >= 1024, "{ports:?}");
    }

    #[test]
    fn other_answers_and_short_bodies_are_errors_that_say_so() {
        let url = serve_once(b"HTTP/1.1 404 Not Found\r\n\r\n");
        assert!(get(&url).unwrap_err().contains("answered 404"));
        let url = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        assert!(get(&url).unwrap_err().contains("after 5 of 100 bytes"));
        let url = serve_once(b"HTTP/1.0 200 OK\r\n\r\n0123456789");
        let error = request("GET", &url, &[], 4).unwrap_err();
        assert!(error.contains("larger than 4 bytes"), "{error}");
        let url = serve_once(b"garbage\r\n\r\n");
        assert!(get(&url).unwrap_err().contains("no status"));
        assert!(
            get("ftp://10.0.2.2/config.yaml")
                .unwrap_err()
                .contains("ftp:// is neither http:// nor https://")
        );
    }

    #[test]
    fn https_answers_are_read_when_their_certificate_chains_to_a_trusted_root() {
        use pki::{CaKind, CertificateAuthority, SubjectAltNames, Validity};
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let ca = pki::generate_ca(CaKind::Talos, Validity::from_now(pki::CA_TTL)).unwrap();
        let authority = CertificateAuthority::from_pair(&ca).unwrap();
        let sans = SubjectAltNames {
            dns_names: Vec::new(),
            ip_addresses: vec!["127.80.0.5".parse().unwrap()],
        };
        let server = authority
            .issue_server_certificate(
                "metadata",
                &sans,
                Validity::from_now(pki::SERVER_CERTIFICATE_TTL),
            )
            .unwrap();
        let pem = |text: &Option<String>| text.as_deref().unwrap().as_bytes().to_vec();
        let chain = vec![CertificateDer::from_pem_slice(&pem(&server.crt)).unwrap()];
        // Talos writes its own PEM label (`ED25519 PRIVATE KEY`): through pki to PKCS#8.
        let key = pki::PrivateKey::from_pem(server.key.as_deref().unwrap()).unwrap();
        let key = PrivateKeyDer::Pkcs8(key.pkcs8_der().to_vec().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.80.0.5:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(connection) = connection else {
                    return;
                };
                let session = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                let mut tls = rustls::StreamOwned::new(session, connection);
                let mut request = [0u8; 1024];
                // The handshake happens here; a client that does not trust the CA leaves.
                if tls.read(&mut request).is_ok() {
                    let _ = tls.write_all(
                        b"HTTP/1.0 200 OK\r\nContent-Length: 18\r\n\r\nversion: v1alpha1\n",
                    );
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        let url = format!("https://{address}/userdata");
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&pem(&ca.crt)).unwrap())
            .unwrap();
        let trusting = Exchange {
            source: Source::Any,
            roots: Arc::new(roots),
        };
        let answer = trusting.run("GET", &url, &[], &[], 64).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"version: v1alpha1\n");
        // Mozilla's roots do not hold the test's CA: refused, saying why.
        let error = get(&url).unwrap_err();
        assert!(error.contains("UnknownIssuer"), "{error}");
    }
}
