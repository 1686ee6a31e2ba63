//! Authorization on machined's socket: the caller's roles come from the `talos-role` metadata
//! apid sets (one value per role, or comma-separated), and the per-method table of the `authz`
//! crate decides. A refused call never reaches its handler.

use std::task::{Context, Poll};

use authz::{METADATA_ROLE, Role, RoleSet};
use futures_util::future::{BoxFuture, FutureExt as _};
use tonic::Status;
use tower::{Layer, Service};

/// The roles of the caller, for handlers whose behaviour depends on them.
#[derive(Clone, Debug, Default)]
pub struct CallerRoles(pub RoleSet);

impl CallerRoles {
    /// The roles attached to `request` by the authorization layer.
    pub fn of<T>(request: &tonic::Request<T>) -> CallerRoles {
        request
            .extensions()
            .get::<CallerRoles>()
            .cloned()
            .unwrap_or_default()
    }

    pub fn is_admin(&self) -> bool {
        self.0.contains(Role::Admin)
    }
}

/// Tower layer applying the method table to every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthorizationLayer;

impl<S> Layer<S> for AuthorizationLayer {
    type Service = Authorization<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorization { inner }
    }
}

/// See [`AuthorizationLayer`].
#[derive(Clone, Debug)]
pub struct Authorization<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Authorization<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let roles = RoleSet::parse(
            request
                .headers()
                .get_all(METADATA_ROLE)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        );
        if let Err(denied) = authz::authorize(request.uri().path(), &roles) {
            tracing::info!(method = denied.method, "denied: not authorized");
            let response = Status::permission_denied(denied.to_string()).into_http();
            return std::future::ready(Ok(response)).boxed();
        }
        request.extensions_mut().insert(CallerRoles(roles));
        self.inner.call(request).boxed()
    }
}
