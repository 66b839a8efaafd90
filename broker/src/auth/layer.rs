//! The one authentication layer, on both servers (docs/adr/0004-security.md §4).
//!
//! Per request it reads, in order, `authorization: Bearer rmq_…` (gRPC metadata is the same
//! HTTP/2 header), the `rapidmq_session` cookie (HTTP `GET`/`HEAD` only, so a cross-site form
//! cannot use it) and the verified client certificate (`auth.mtls_identity`), verifies the credential and inserts a [`Principal`] into the request's
//! extensions. Bad credentials are answered here, `UNAUTHENTICATED` / 401 with the stable code;
//! missing ones give [`Principal::anonymous`], which [`Auth::authorize`] refuses when auth is on.
//! With auth off every request is anonymous, whatever it carries.
//!
//! Every principal carries the request's [`Source`] (the client's address and the transport)
//! for the audit log; a credential that does not work is recorded there (`auth.token`,
//! `auth.certificate`), without its secret.
//!
//! Routes that reach no engine call are checked here, from a route table: the login is public;
//! the OpenAPI document, the docs page and gRPC reflection need a caller unless
//! `auth.docs_open`; `/metrics` (unless `auth.metrics_open`) and the dashboard need `Describe` on
//! the cluster. Every other route is checked by the engine operation its handler calls
//! (docs/adr/0004-security.md §6). `/healthz` and `/readyz` are mounted outside this layer.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, Response, header};
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::{Action, Auth, Resource, Token, mtls, split_user_name};
use crate::error::{Error, Result};
use crate::observability::Transport;
use crate::principal::{DEFAULT_TENANT, Principal, PrincipalKind, Source, TenantId};
use crate::tenant::ConnectionTenant;
use crate::tls::PeerInfo;
use rapidmq_proto::TENANT_METADATA;

/// The cookie a login sets for browsers (the dashboard).
pub const SESSION_COOKIE: &str = "rapidmq_session";

/// How a server answers a refused request.
pub trait Reject: Send + Sync + 'static {
    type Body;
    /// The transport a request came in on, for the audit log.
    const TRANSPORT: Transport;
    fn reject(err: Error) -> Response<Self::Body>;
}

/// gRPC: a trailers-only `Status` carrying the stable code in metadata.
pub struct GrpcReject;

impl Reject for GrpcReject {
    type Body = tonic::body::Body;
    const TRANSPORT: Transport = Transport::Grpc;
    fn reject(err: Error) -> Response<tonic::body::Body> {
        tonic::Status::from(err).into_http()
    }
}

/// HTTP: a problem+json document.
pub struct HttpReject;

impl Reject for HttpReject {
    type Body = axum::body::Body;
    const TRANSPORT: Transport = Transport::Http;
    fn reject(err: Error) -> Response<axum::body::Body> {
        crate::rest::error::ApiError::from(err).into_response()
    }
}

/// Authenticates every request of the service it wraps.
pub struct AuthLayer<R> {
    auth: Arc<Auth>,
    reject: PhantomData<fn() -> R>,
}

impl<R> AuthLayer<R> {
    pub fn new(auth: Arc<Auth>) -> AuthLayer<R> {
        AuthLayer {
            auth,
            reject: PhantomData,
        }
    }
}

impl<R> Clone for AuthLayer<R> {
    fn clone(&self) -> Self {
        AuthLayer::new(self.auth.clone())
    }
}

impl<S, R> Layer<S> for AuthLayer<R> {
    type Service = AuthService<S, R>;

    fn layer(&self, inner: S) -> AuthService<S, R> {
        AuthService {
            inner,
            auth: self.auth.clone(),
            reject: PhantomData,
        }
    }
}

pub struct AuthService<S, R> {
    inner: S,
    auth: Arc<Auth>,
    reject: PhantomData<fn() -> R>,
}

impl<S: Clone, R> Clone for AuthService<S, R> {
    fn clone(&self) -> Self {
        AuthService {
            inner: self.inner.clone(),
            auth: self.auth.clone(),
            reject: PhantomData,
        }
    }
}

impl<S, R, B> Service<Request<B>> for AuthService<S, R>
where
    S: Service<Request<B>, Response = Response<R::Body>> + Clone + Send + 'static,
    S::Future: Send,
    R: Reject,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, std::result::Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // gRPC requests carry the connection's `PeerInfo`, axum ones `ConnectInfo<PeerInfo>`.
        let extensions = request.extensions();
        let peer = extensions.get::<PeerInfo>().or_else(|| {
            extensions
                .get::<ConnectInfo<PeerInfo>>()
                .map(|ConnectInfo(peer)| peer)
        });
        let certificate = peer.and_then(|p| p.client_certificate.as_deref());
        let connection = peer.map(|p| p.tenant.clone());
        let source = Source {
            addr: peer.and_then(|p| p.remote),
            transport: R::TRANSPORT.label(),
        };
        let decided = decide(
            &self.auth,
            request.method(),
            request.uri().path(),
            request.headers(),
            certificate.map(|c| c.as_ref()),
            source,
        )
        .map(|principal| principal.with_source(source))
        .and_then(|principal| {
            let principal = acting_tenant(&self.auth, principal, request.headers())?;
            if let Some(connection) = connection {
                count_connection(&self.auth, &principal, &connection)?;
            }
            Ok(principal)
        });
        // The service that was polled ready serves this request; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match decided {
                Err(err) => Ok(R::reject(err)),
                Ok(principal) => {
                    // The request span (gRPC `trace_fn`, REST `request_span`) is current here.
                    tracing::Span::current().record("tenant", principal.tenant().as_str());
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
            }
        })
    }
}

/// The routes this layer checks itself, having no engine call to check them.
enum Route {
    /// Needs no caller: the login.
    Public,
    /// The OpenAPI document, the docs page, gRPC reflection.
    Docs,
    Metrics,
    Dashboard,
    /// Checked where the handler takes its principal.
    Engine,
}

fn route(method: &Method, path: &str) -> Route {
    match path {
        "/v1/auth/login" if method == Method::POST => Route::Public,
        "/rapidmq.v1.Auth/Login" => Route::Public,
        "/metrics" => Route::Metrics,
        "/" => Route::Dashboard,
        "/v1/openapi.json" => Route::Docs,
        _ if path.starts_with("/dashboard/") => Route::Dashboard,
        _ if path == "/v1/docs" || path.starts_with("/v1/docs/") => Route::Docs,
        _ if path.starts_with("/grpc.reflection.") => Route::Docs,
        _ => Route::Engine,
    }
}

/// The principal of a request, or why it is refused.
fn decide(
    auth: &Auth,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    certificate: Option<&[u8]>,
    source: Source,
) -> Result<Principal> {
    if !auth.enabled() {
        return Ok(Principal::anonymous());
    }
    let route = route(method, path);
    if matches!(route, Route::Public) {
        // A login needs no credentials, and a stale session sent with it must not stop a
        // client from logging in again.
        return Ok(Principal::anonymous());
    }
    // A bearer token (or the session cookie) wins over the client certificate.
    let presented = credential(method, headers).inspect_err(|_| {
        auth.record_failure(
            source,
            DEFAULT_TENANT,
            "anonymous".into(),
            "auth.token",
            String::new(),
            "malformed authorization header",
        )
    })?;
    let principal = match presented {
        Some(token) => auth
            .authenticate(token)
            .inspect_err(|err| token_failed(auth, token, err, source))?,
        None => match certificate {
            Some(der) => auth
                .authenticate_certificate(der)
                .inspect_err(|_| certificate_failed(auth, der, source))?
                .unwrap_or_else(Principal::anonymous),
            None => Principal::anonymous(),
        },
    };
    let principal = principal.with_source(source);
    let config = auth.config();
    match route {
        Route::Public | Route::Engine => {}
        // Any caller may read the API's documentation; only the cluster's operators its
        // metrics and dashboard, whose series name every tenant's topics.
        Route::Docs if !config.docs_open => auth.authenticated(&principal)?,
        Route::Docs => {}
        Route::Metrics if config.metrics_open => {}
        Route::Metrics | Route::Dashboard => {
            auth.authorize(&principal, Action::Describe, Resource::Cluster)?
        }
    }
    Ok(principal)
}

/// The principal acting in the tenant `rapidmq-tenant` names, if it names one. Only a cluster
/// admin (anyone, with auth off) may act in another tenant; for every other caller a foreign
/// tenant is answered as a missing one, so the header cannot probe which tenants exist.
fn acting_tenant(auth: &Auth, principal: Principal, headers: &HeaderMap) -> Result<Principal> {
    let Some(value) = headers.get(TENANT_METADATA) else {
        return Ok(principal);
    };
    let name = value
        .to_str()
        .map_err(|_| Error::invalid("the rapidmq-tenant header is not a tenant name"))?;
    // An anonymous caller is refused as such wherever it asks to act.
    if name == principal.tenant().as_str()
        || (auth.enabled() && principal.kind() == PrincipalKind::Anonymous)
    {
        return Ok(principal);
    }
    let may_switch = !auth.enabled()
        || auth
            .authorize(&principal, Action::Admin, Resource::Cluster)
            .is_ok();
    if !may_switch || !auth.tenants().exists(name) {
        return Err(Error::tenant_not_found(name));
    }
    Ok(principal.acting_in(TenantId::new(name)))
}

/// Counts the request's connection towards the tenant it acts in, from its first request
/// with credentials (any request, with auth off), refusing it past `max_connections`.
fn count_connection(
    auth: &Auth,
    principal: &Principal,
    connection: &ConnectionTenant,
) -> Result<()> {
    if auth.enabled() && principal.kind() != PrincipalKind::User {
        return Ok(());
    }
    connection.count(&auth.tenants().runtime(principal.tenant().as_str()))
}

/// Records a bearer token that does not work, by its id (never its secret): in its owner's
/// tenant when the id exists (a wrong secret), else in `default`.
fn token_failed(auth: &Auth, bearer: &str, err: &Error, source: Source) {
    let Ok(token) = bearer.trim().parse::<Token>() else {
        let reason = "malformed token";
        auth.record_failure(
            source,
            DEFAULT_TENANT,
            "anonymous".into(),
            "auth.token",
            String::new(),
            reason,
        );
        return;
    };
    let id = token.id();
    let tenant = auth
        .token(id)
        .map_or(DEFAULT_TENANT.to_string(), |t| t.tenant.clone());
    let reason = if err.credentials_expired() {
        "expired token"
    } else {
        "invalid token"
    };
    let actor = format!("token:{id}");
    auth.record_failure(source, &tenant, actor.clone(), "auth.token", actor, reason);
}

/// Records a verified client certificate whose user does not exist, is disabled, or whose
/// certificate has expired.
fn certificate_failed(auth: &Auth, der: &[u8], source: Source) {
    let name = mtls::identity(der, auth.config().mtls_identity).map(|(name, _)| name);
    let name = name.unwrap_or_default();
    let (tenant, user) = split_user_name(&name);
    let actor = format!("{tenant}/{user}");
    let reason = "certificate names no usable user, or has expired";
    auth.record_failure(
        source,
        tenant,
        actor.clone(),
        "auth.certificate",
        format!("user:{actor}"),
        reason,
    );
}

/// The token a request presents: a bearer token, else (on safe methods) the session cookie.
/// Another `authorization` scheme is refused.
fn credential<'a>(method: &Method, headers: &'a HeaderMap) -> Result<Option<&'a str>> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| Error::bad_credentials())?;
        match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                return Ok(Some(token.trim()));
            }
            _ => return Err(Error::bad_credentials()),
        }
    }
    if method != Method::GET && method != Method::HEAD {
        return Ok(None);
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim());
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_first_then_the_cookie_on_safe_methods_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; rapidmq_session=rmq_c"),
        );
        assert_eq!(credential(&Method::GET, &headers).unwrap(), Some("rmq_c"));
        assert_eq!(credential(&Method::POST, &headers).unwrap(), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer rmq_b"),
        );
        assert_eq!(credential(&Method::POST, &headers).unwrap(), Some("rmq_b"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eDp5"),
        );
        assert!(credential(&Method::GET, &headers).is_err());
    }
}
