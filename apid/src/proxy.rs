//! One call: effective roles, authorization, routing, then forwarding without decoding.

use std::borrow::Cow;
use std::sync::Arc;

use authz::{METADATA_NODE, METADATA_NODES, METADATA_PROXY_FROM, METADATA_ROLE, Role, RoleSet};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Request, Response};
use hyper::body::Incoming;

use crate::body::ProxyBody;
use crate::error::ApidError;
use crate::fanout;
use crate::grpc;
use crate::routing::Route;
use crate::state::Shared;
use crate::upstream::Upstream;

/// Handles one call from a caller whose certificate (or maintenance mode) grants
/// `connection_roles`. Every failure becomes a gRPC status.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    connection_roles: Arc<RoleSet>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    match dispatch(shared, &connection_roles, request).await {
        Ok(response) => response,
        Err(error) => {
            match &error {
                ApidError::Connect { .. } | ApidError::Upstream { .. } => {
                    tracing::warn!(%error, "forwarding failed");
                }
                _ => tracing::info!(%error, "call refused"),
            }
            grpc::status_response(error.to_status())
        }
    }
}

async fn dispatch(
    shared: Arc<Shared>,
    connection_roles: &RoleSet,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, ApidError> {
    let method = request.uri().path();
    let roles = effective_roles(connection_roles, request.headers());
    authz::authorize(method, &roles)?;
    let forwarding = shared.forwarding_tls();
    let route = shared
        .routing
        .route(method, request.headers(), forwarding.is_some())?;

    let (mut head, body) = request.into_parts();
    set_forwarded_metadata(&mut head, &roles);
    match (route, forwarding) {
        (Route::Local, _) => relay(shared.upstreams.machined().await?, head, body).await,
        (Route::OneToOne(target), Some(tls)) => {
            relay(shared.upstreams.node(&target, &tls).await?, head, body).await
        }
        (Route::OneToMany(targets), Some(tls)) => {
            // Boxed to keep the future of every other call small.
            Ok(Box::pin(fanout::call(shared.clone(), tls, head, body, targets)).await)
        }
        // Routing never forwards without a client certificate; kept exhaustive all the same.
        (Route::OneToOne(target), None) => Err(ApidError::NoForwarding { target }),
        (Route::OneToMany(targets), None) => Err(ApidError::NoForwarding {
            target: targets.into_iter().next().unwrap_or_default(),
        }),
    }
}

/// One-to-one: the call's streams pass through unchanged in both directions, headers and
/// trailers included.
async fn relay(
    upstream: Upstream,
    head: Parts,
    body: Incoming,
) -> Result<Response<ProxyBody>, ApidError> {
    tracing::debug!(upstream = upstream.name(), "relaying");
    let response = upstream.send(head, ProxyBody::Relayed(body)).await?;
    Ok(response.map(ProxyBody::Relayed))
}

/// The roles a call runs with: the connection's, unless the connection belongs to an
/// impersonator and the call carries `talos-role`.
fn effective_roles<'a>(connection_roles: &'a RoleSet, headers: &HeaderMap) -> Cow<'a, RoleSet> {
    if connection_roles.contains(Role::Impersonator) && headers.contains_key(METADATA_ROLE) {
        Cow::Owned(RoleSet::parse(
            headers
                .get_all(METADATA_ROLE)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        ))
    } else {
        Cow::Borrowed(connection_roles)
    }
}

/// The incoming metadata as forwarded: `talos-role` set to the effective roles, `proxyfrom` to
/// the original `:authority`, routing keys removed (the `:authority` itself is replaced by the
/// upstream's).
fn set_forwarded_metadata(head: &mut Parts, roles: &RoleSet) {
    let authority = head
        .uri
        .authority()
        .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
        .unwrap_or_else(|| HeaderValue::from_static(""));
    let headers = &mut head.headers;
    headers.remove(METADATA_NODE);
    headers.remove(METADATA_NODES);
    headers.remove(http::header::HOST);
    headers.remove(METADATA_ROLE);
    for role in roles.roles() {
        headers.append(METADATA_ROLE, HeaderValue::from_static(role.as_str()));
    }
    headers.insert(METADATA_PROXY_FROM, authority);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&'static str, &'static str)]) -> Parts {
        let mut builder =
            Request::builder().uri("https://10.5.0.2:50000/machine.MachineService/Version");
        for (key, value) in headers {
            builder = builder.header(*key, *value);
        }
        builder.body(()).expect("valid request").into_parts().0
    }

    #[test]
    fn impersonators_take_roles_from_metadata() {
        let head = request(&[
            ("talos-role", "os:reader"),
            ("talos-role", "team:x"),
            ("talos-role", "x,os:admin"),
        ]);
        let impersonator = RoleSet::parse(["os:impersonator"]);
        let roles = effective_roles(&impersonator, &head.headers);
        assert_eq!(roles.roles().collect::<Vec<_>>(), [Role::Reader]);
        // Without the metadata the certificate's own roles apply.
        let roles = effective_roles(&impersonator, &HeaderMap::new());
        assert_eq!(roles.roles().collect::<Vec<_>>(), [Role::Impersonator]);
        // Anyone else's `talos-role` is ignored.
        let admin = RoleSet::parse(["os:reader"]);
        let head = request(&[("talos-role", "os:admin")]);
        assert_eq!(
            effective_roles(&admin, &head.headers)
                .roles()
                .collect::<Vec<_>>(),
            [Role::Reader]
        );
    }

    #[test]
    fn forwarded_metadata_replaces_routing_keys_and_roles() {
        let mut head = request(&[
            ("node", "10.5.0.3"),
            ("nodes", "10.5.0.4"),
            ("talos-role", "os:admin"),
            ("x-custom", "kept"),
        ]);
        set_forwarded_metadata(&mut head, &RoleSet::parse(["os:operator", "os:reader"]));
        let h = &head.headers;
        assert!(!h.contains_key("node") && !h.contains_key("nodes"));
        let roles: Vec<_> = h
            .get_all("talos-role")
            .iter()
            .map(|v| v.to_str().ok())
            .collect();
        assert_eq!(roles, [Some("os:operator"), Some("os:reader")]);
        assert_eq!(
            h.get("proxyfrom").and_then(|v| v.to_str().ok()),
            Some("10.5.0.2:50000")
        );
        assert_eq!(
            h.get("x-custom").and_then(|v| v.to_str().ok()),
            Some("kept")
        );
    }
}
