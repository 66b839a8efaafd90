//! The `Auth` service: password login for a session token, and who the caller is.

use std::sync::Arc;

use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::auth_server::Auth;
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::principal;
use crate::engine::Engine;
use crate::observability::Transport;
use crate::principal::{Credential, PrincipalKind, Source};
use crate::tls::PeerInfo;

pub struct AuthService {
    engine: Arc<Engine>,
}

impl AuthService {
    pub fn new(engine: Arc<Engine>) -> AuthService {
        AuthService { engine }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Auth for AuthService {
    /// Public: the layer lets it through without credentials.
    #[instrument(skip_all, fields(user = %request.get_ref().user))]
    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let peer = request
            .extensions()
            .get::<PeerInfo>()
            .cloned()
            .unwrap_or_else(PeerInfo::unknown);
        let source = Source {
            addr: peer.remote,
            transport: Transport::Grpc.label(),
        };
        let r = request.into_inner();
        let issued = self
            .engine
            .login(&r.user, r.password, &peer, source)
            .await?;
        Ok(Response::new(pb::LoginResponse {
            token: issued.token.to_string(),
            token_id: issued.record.id,
            expires_at_ms: issued.record.expires_at_ms.unwrap_or(0),
        }))
    }

    async fn who_am_i(&self, request: Request<pb::WhoAmIRequest>) -> Reply<pb::WhoAmIResponse> {
        let principal = principal(&request)?;
        self.engine.authenticated(&principal)?;
        let token_id = match principal.credential() {
            Some(Credential::Token(id) | Credential::Session(id)) => id.clone(),
            Some(Credential::Certificate) | None => String::new(),
        };
        let kind = match principal.kind() {
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::User => "user",
            PrincipalKind::System => "system",
        };
        Ok(Response::new(pb::WhoAmIResponse {
            tenant: principal.home_tenant().to_string(),
            user: principal.name().unwrap_or_default().to_string(),
            kind: kind.to_string(),
            token_id,
            expires_at_ms: principal.expires_at_ms().unwrap_or(0),
            auth_enabled: self.engine.auth().enabled(),
        }))
    }
}
