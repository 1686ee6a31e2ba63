//! A plain-HTTP GET for `talos.config=http://…` (PID 1, before any service runs): HTTP/1.0,
//! one request per connection, the body read to the end of the connection.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// Limit for connecting and for each read.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body accepted (a machine config is a few tens of KiB).
const MAX_BODY: u64 = 16 << 20;

/// The body of `url` when the server answers 200; otherwise what went wrong, in words.
pub fn get(url: &str) -> Result<Vec<u8>, String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("{url}: {error}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "{url}: only http:// can be downloaded (the image carries no CA bundle for https)"
        ));
    }
    let host = parsed.host_str().ok_or_else(|| format!("{url}: no host"))?;
    let port = parsed.port().unwrap_or(80);
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("{url}: {error}"))?
        .next()
        .ok_or_else(|| format!("{url}: {host} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|error| format!("{url}: connecting to {address}: {error}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|error| error.to_string())?;
    let target = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let request = format!(
        "GET {target} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: talos-rs machined\r\nAccept: */*\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("{url}: sending the request: {error}"))?;
    let mut response = Vec::new();
    stream
        .take(MAX_BODY)
        .read_to_end(&mut response)
        .map_err(|error| format!("{url}: reading the answer: {error}"))?;
    body_of(&response).map_err(|problem| format!("{url}: {problem}"))
}

/// The body of a whole HTTP/1.x response with status 200.
fn body_of(response: &[u8]) -> Result<Vec<u8>, String> {
    let end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or("the answer has no end of headers")?;
    let head = String::from_utf8_lossy(&response[..end]);
    let status = head.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(format!("the server answered {status:?}"));
    }
    let body = &response[end + 4..];
    let length = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    match length {
        Some(length) if body.len() < length => Err(format!(
            "the answer ended after {} of {length} bytes",
            body.len()
        )),
        Some(length) => Ok(body[..length].to_vec()),
        None => Ok(body.to_vec()),
    }
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
    fn other_answers_and_short_bodies_are_errors_that_say_so() {
        let url = serve_once(b"HTTP/1.1 404 Not Found\r\n\r\n");
        assert!(get(&url).unwrap_err().contains("404 Not Found"));
        let url = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        assert!(get(&url).unwrap_err().contains("after 5 of 100 bytes"));
        assert!(
            get("https://10.0.2.2/config.yaml")
                .unwrap_err()
                .contains("only http://")
        );
    }
}
