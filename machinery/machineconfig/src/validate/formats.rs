//! Checks of single values: IPs, CIDRs, URLs, DNS names, tokens, image tags, keys.
//! Each returns `Err(message)` saying what is wrong with the value.

use std::net::IpAddr;

use ipnet::IpNet;
use url::Url;

/// An IP address.
pub fn ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a valid IP address"))
}

/// A CIDR (`10.0.0.0/8`, `fd00::/64`).
pub fn cidr(text: &str) -> Result<IpNet, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a valid CIDR"))
}

/// An interface address: a CIDR, or a bare IP (a host address).
pub fn address(text: &str) -> Result<(), String> {
    if text.parse::<IpNet>().is_ok() || text.parse::<IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not a valid address (expected a CIDR such as 192.168.1.10/24)"
        ))
    }
}

/// A subnet filter: a CIDR or IP, optionally negated with a leading `!`.
pub fn subnet_filter(text: &str) -> Result<(), String> {
    let subnet = text.strip_prefix('!').unwrap_or(text);
    if subnet.parse::<IpNet>().is_ok() || subnet.parse::<IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not a valid subnet (expected a CIDR, optionally prefixed with \"!\")"
        ))
    }
}

/// An absolute URL with a host.
pub fn url(text: &str) -> Result<Url, String> {
    let parsed = Url::parse(text).map_err(|err| format!("{text:?} is not a valid URL: {err}"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} is not a valid URL: no host"));
    }
    Ok(parsed)
}

/// An HTTP(S) URL.
pub fn http_url(text: &str) -> Result<Url, String> {
    let parsed = url(text)?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(format!("{text:?}: scheme {other:?} is not http or https")),
    }
}

/// A lower-case DNS name (RFC 1123 subdomain): labels of `a-z`, `0-9`, `-`, at most 63
/// characters each, 253 in all.
pub fn dns_name(text: &str) -> Result<(), String> {
    dns_name_with(text, false)
}

/// A hostname: like [`dns_name`], upper case allowed.
pub fn hostname(text: &str) -> Result<(), String> {
    dns_name_with(text, true)
}

fn dns_name_with(text: &str, allow_upper: bool) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("{text:?} is not a valid DNS name: {why}"));
    if text.is_empty() {
        return invalid("empty");
    }
    if text.len() > 253 {
        return invalid("longer than 253 characters");
    }
    for label in text.split('.') {
        if label.is_empty() || label.len() > 63 {
            return invalid("each dot-separated label must have 1 to 63 characters");
        }
        let allowed = |c: char| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '-'
                || (allow_upper && c.is_ascii_uppercase())
        };
        if !label.chars().all(allowed) {
            return invalid("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid("labels must not start or end with '-'");
        }
    }
    Ok(())
}

/// A join or bootstrap token: `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn token(text: &str) -> Result<(), String> {
    let part_ok = |part: &str, len: usize| {
        part.len() == len
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    match text.split_once('.') {
        Some((id, secret)) if part_ok(id, 6) && part_ok(secret, 16) => Ok(()),
        _ => Err(format!(
            "{text:?} is not a valid token (expected [a-z0-9]{{6}}.[a-z0-9]{{16}})"
        )),
    }
}

/// An image reference whose tag is a Kubernetes version (`registry.k8s.io/kube-apiserver:v1.33.0`,
/// a digest after the tag allowed).
pub fn kubernetes_image(text: &str) -> Result<(), String> {
    let without_digest = text.split_once('@').map_or(text, |(name, _)| name);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let Some((_, tag)) = last_segment.rsplit_once(':') else {
        return Err(format!(
            "image {text:?} has no tag; the tag must be the Kubernetes version (vX.Y.Z)"
        ));
    };
    let version = tag.strip_prefix('v').unwrap_or("");
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    if parts.len() == 3 && parts.iter().all(numeric) {
        Ok(())
    } else {
        Err(format!(
            "image {text:?}: tag {tag:?} is not a Kubernetes version (vX.Y.Z)"
        ))
    }
}

/// A WireGuard key: base64 of 32 bytes.
pub fn wireguard_key(text: &str) -> Result<(), String> {
    let body_ok = text.len() == 44
        && text.ends_with('=')
        && !text[..43].contains('=')
        && text[..43]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    if body_ok {
        Ok(())
    } else {
        Err("not a valid WireGuard key (expected base64 of 32 bytes)".to_string())
    }
}

/// A registry as containerd names it: `*` (every registry), or a host name or IP address
/// (IPv6 in brackets) with an optional `:port`. Nothing else: the name becomes a directory.
pub fn registry_host(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    let invalid = || {
        format!(
            "{text:?} is not a registry host (a host name or IP address, optionally with :port, or \"*\")"
        )
    };
    let host = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            port.parse::<u16>().map_err(|_| invalid())?;
            host
        }
        _ => text,
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<IpAddr>().is_ok() || hostname(host).is_ok(),
    };
    if host_ok { Ok(()) } else { Err(invalid()) }
}

/// `host:port` (IPv6 hosts in brackets).
pub fn host_port(text: &str) -> Result<(), String> {
    let invalid = || format!("{text:?} is not a valid host:port");
    let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
    port.parse::<u16>().map_err(|_| invalid())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(invalid());
    }
    Ok(())
}

/// An environment variable of a system service: a POSIX name (`[A-Za-z_][A-Za-z0-9_]*`, the
/// rule upstream's `EnvironmentConfig` applies) and a value without a NUL byte (which no
/// process environment can carry).
pub fn environment_variable(name: &str, value: &str) -> Result<(), String> {
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(format!(
            "invalid environment variable name {name:?}: it must start with a letter or _ and \
             hold only letters, digits and _"
        ));
    }
    if value.contains('\0') {
        return Err(format!("the value of {name} contains a NUL byte"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts() {
        for good in [
            "*",
            "docker.io",
            "registry.local:5000",
            "10.5.0.1:5000",
            "[fd00::1]:5000",
            "fd00::1",
            "localhost",
        ] {
            assert!(registry_host(good).is_ok(), "{good}");
        }
        for bad in ["", "..", "../state", "a/b", "host:port", "a b", "*.io"] {
            assert!(registry_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_and_subnets() {
        assert!(address("192.168.1.10/24").is_ok());
        assert!(address("fd00::1").is_ok());
        assert!(address("192.168.1.300/24").is_err());
        assert!(subnet_filter("!10.0.0.0/8").is_ok());
        assert!(subnet_filter("!!10.0.0.0/8").is_err());
        assert!(cidr("10.0.0.0").is_err());
    }

    #[test]
    fn urls_need_a_host() {
        assert!(url("https://1.2.3.4:6443").is_ok());
        assert!(url("1.2.3.4:6443").is_err());
        assert!(url("not a url").is_err());
        assert!(http_url("tcp://x:1").is_err());
    }

    #[test]
    fn dns_names() {
        assert!(dns_name("cluster.local").is_ok());
        assert!(dns_name("Cluster.local").is_err());
        assert!(hostname("Node-1").is_ok());
        assert!(dns_name("-a.b").is_err());
        assert!(dns_name("a..b").is_err());
        assert!(dns_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn tokens() {
        assert!(token("abcdef.0123456789abcdef").is_ok());
        assert!(token("ABCDEF.0123456789abcdef").is_err());
        assert!(token("abcdef.0123456789abcde").is_err());
        assert!(token("abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn kubernetes_image_tags() {
        assert!(kubernetes_image("registry.k8s.io/kube-apiserver:v1.33.0").is_ok());
        assert!(kubernetes_image("localhost:5000/kubelet:v1.33.0-rc.1@sha256:abcd").is_ok());
        assert!(kubernetes_image("localhost:5000/kubelet").is_err());
        assert!(kubernetes_image("ghcr.io/siderolabs/kubelet:latest").is_err());
        assert!(kubernetes_image("ghcr.io/siderolabs/kubelet:v1.33").is_err());
    }

    #[test]
    fn wireguard_keys_and_endpoints() {
        assert!(wireguard_key("GEjcoaf+/h+f9bdKGa0NG2MqQbpGzaXiuCEaR1s3fGA=").is_ok());
        assert!(wireguard_key("short=").is_err());
        assert!(host_port("192.168.1.1:51820").is_ok());
        assert!(host_port("[fd00::1]:51820").is_ok());
        assert!(host_port("example.com").is_err());
    }
}
