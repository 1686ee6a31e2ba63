//! Where a call goes (reference §2.3), decided from its method and metadata alone.

use std::net::IpAddr;

use authz::{METADATA_NODE, METADATA_NODES, METADATA_PROXY_FROM};
use http::HeaderMap;

use crate::error::ApidError;

/// Distinct nodes one call may fan out to.
pub(crate) const MAX_FAN_OUT: usize = 64;

/// Services whose methods may fan out with `nodes` (the classic ones with the `messages`
/// wrapper).
const ONE_TO_MANY_PREFIXES: [&str; 5] = [
    "/machine.MachineService/",
    "/cluster.ClusterService/",
    "/inspect.InspectService/",
    "/storage.StorageService/",
    "/time.TimeService/",
];

/// Where one call goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// To this node's machined.
    Local,
    /// To one other node's apid, transparently.
    OneToOne(String),
    /// To several nodes' apid, replies aggregated and stamped with each target.
    OneToMany(Vec<String>),
}

/// What this apid knows about itself when routing.
#[derive(Clone, Debug)]
pub(crate) struct RoutingPolicy {
    /// False in maintenance mode: everything is local.
    pub enabled: bool,
    /// Names and addresses of this node, treated as local on nodes that cannot forward.
    pub local_names: Vec<String>,
}

impl RoutingPolicy {
    /// Decides the route of a call to `method` with request `headers`. `can_forward` tells
    /// whether this node holds a client certificate for forwarding.
    pub fn route(
        &self,
        method: &str,
        headers: &HeaderMap,
        can_forward: bool,
    ) -> Result<Route, ApidError> {
        let has_nodes = headers.contains_key(METADATA_NODES);
        let has_node = headers.contains_key(METADATA_NODE);
        if !self.enabled || headers.contains_key(METADATA_PROXY_FROM) || !(has_nodes || has_node) {
            return Ok(Route::Local);
        }
        let node = values(headers, METADATA_NODE)?;
        if node.len() > 1 {
            return Err(ApidError::NodeNotSingleValued { count: node.len() });
        }
        let targets = if has_nodes {
            let mut targets = values(headers, METADATA_NODES)?;
            let mut seen = std::collections::HashSet::new();
            targets.retain(|target| seen.insert(target.clone()));
            if targets.len() > MAX_FAN_OUT {
                return Err(ApidError::TooManyTargets {
                    count: targets.len(),
                    max: MAX_FAN_OUT,
                });
            }
            targets
        } else {
            node
        };
        if !can_forward
            && let [target] = targets.as_slice()
            && self.local_names.iter().any(|name| name == target)
        {
            return Ok(Route::Local);
        }
        if has_nodes && !ONE_TO_MANY_PREFIXES.iter().any(|p| method.starts_with(p)) {
            return Err(ApidError::OneToManyUnsupported {
                method: method.to_owned(),
            });
        }
        if let Some(target) = targets.iter().find(|target| !is_valid_target(target)) {
            return Err(ApidError::BadTarget {
                target: target.clone(),
            });
        }
        if !can_forward {
            return Err(ApidError::NoForwarding {
                target: targets.into_iter().next().unwrap_or_default(),
            });
        }
        if has_nodes {
            Ok(Route::OneToMany(targets))
        } else {
            Ok(Route::OneToOne(
                targets.into_iter().next().unwrap_or_default(),
            ))
        }
    }
}

/// Every value of a metadata key; a value that is not text is an invalid target.
fn values(headers: &HeaderMap, key: &str) -> Result<Vec<String>, ApidError> {
    headers
        .get_all(key)
        .iter()
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| ApidError::BadTarget {
                    target: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                })
        })
        .collect()
}

/// A target is a host name or an IP address, without port.
fn is_valid_target(target: &str) -> bool {
    if target.parse::<IpAddr>().is_ok() {
        return true;
    }
    !target.is_empty()
        && target
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use tonic::Code;

    const VERSION: &str = "/machine.MachineService/Version";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (key, value) in pairs {
            headers.append(*key, HeaderValue::from_str(value).expect("header text"));
        }
        headers
    }

    fn policy() -> RoutingPolicy {
        RoutingPolicy {
            enabled: true,
            local_names: vec!["10.5.0.2".into(), "node-1".into()],
        }
    }

    fn code(result: Result<Route, ApidError>) -> Code {
        result.expect_err("must be refused").to_status().code()
    }

    #[test]
    fn no_routing_metadata_or_proxyfrom_is_local() {
        assert_eq!(
            policy().route(VERSION, &headers(&[]), true).ok(),
            Some(Route::Local)
        );
        let forwarded = headers(&[("node", "10.5.0.3"), ("proxyfrom", "10.5.0.1:50000")]);
        assert_eq!(
            policy().route(VERSION, &forwarded, true).ok(),
            Some(Route::Local)
        );
    }

    #[test]
    fn maintenance_ignores_routing() {
        let policy = RoutingPolicy {
            enabled: false,
            local_names: vec![],
        };
        let h = headers(&[("nodes", "a"), ("nodes", "b")]);
        assert_eq!(
            policy.route("/cosi.resource.State/Get", &h, false).ok(),
            Some(Route::Local)
        );
    }

    #[test]
    fn node_routes_one_to_one_and_must_be_single() {
        let h = headers(&[("node", "10.5.0.3")]);
        assert_eq!(
            policy().route(VERSION, &h, true).ok(),
            Some(Route::OneToOne("10.5.0.3".into()))
        );
        let h = headers(&[("node", "10.5.0.3"), ("node", "10.5.0.4")]);
        assert_eq!(
            code(policy().route(VERSION, &h, true)),
            Code::InvalidArgument
        );
    }

    #[test]
    fn nodes_fan_out_only_on_classic_services() {
        let h = headers(&[("nodes", "a"), ("nodes", "b")]);
        assert_eq!(
            policy().route(VERSION, &h, true).ok(),
            Some(Route::OneToMany(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            policy().route("/time.TimeService/Time", &h, true).ok(),
            Some(Route::OneToMany(vec!["a".into(), "b".into()]))
        );
        // A target named twice is called once; more than the limit is refused.
        let twice = headers(&[("nodes", "a"), ("nodes", "b"), ("nodes", "a")]);
        assert_eq!(
            policy().route(VERSION, &twice, true).ok(),
            Some(Route::OneToMany(vec!["a".into(), "b".into()]))
        );
        let many: Vec<String> = (0..=MAX_FAN_OUT).map(|i| format!("node-{i}")).collect();
        let many = headers(
            &many
                .iter()
                .map(|n| ("nodes", n.as_str()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            code(policy().route(VERSION, &many, true)),
            Code::InvalidArgument
        );
        let refused = policy().route("/cosi.resource.State/Get", &h, true);
        let status = refused.expect_err("refused").to_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "one-2-many proxying is not supported");
    }

    #[test]
    fn own_names_are_local_only_without_client_certificate() {
        let h = headers(&[("nodes", "node-1")]);
        assert_eq!(policy().route(VERSION, &h, false).ok(), Some(Route::Local));
        assert_eq!(
            policy().route(VERSION, &h, true).ok(),
            Some(Route::OneToMany(vec!["node-1".into()]))
        );
        let h = headers(&[("node", "10.5.0.2")]);
        assert_eq!(policy().route(VERSION, &h, false).ok(), Some(Route::Local));
    }

    #[test]
    fn forwarding_without_client_certificate_is_refused() {
        let h = headers(&[("node", "10.5.0.9")]);
        let status = policy()
            .route(VERSION, &h, false)
            .expect_err("refused")
            .to_status();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "no request forwarding");
        let h = headers(&[("nodes", "10.5.0.2"), ("nodes", "10.5.0.9")]);
        assert_eq!(
            code(policy().route(VERSION, &h, false)),
            Code::PermissionDenied
        );
    }

    #[test]
    fn targets_with_ports_or_empty_are_internal_errors() {
        for target in ["10.5.0.3:50000", "", "node-2:50000", "[::1]:50000"] {
            let mut h = HeaderMap::new();
            h.insert("node", HeaderValue::from_str(target).expect("valid header"));
            assert_eq!(
                code(policy().route(VERSION, &h, true)),
                Code::Internal,
                "{target:?}"
            );
        }
        let h = headers(&[("node", "fd00::1")]);
        assert_eq!(
            policy().route(VERSION, &h, true).ok(),
            Some(Route::OneToOne("fd00::1".into()))
        );
    }
}
