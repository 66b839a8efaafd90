//! Credentials on the wire (docs/adr/0004-security.md §11): every request of a client carries
//! `authorization: Bearer <token>` from one slot, which holds the API token or the current
//! session token. With user and password the client logs in at connect and again at 80 % of the
//! session's life, on the client's runtime, and once more when the broker answers a call with
//! `rapidmq-auth-reason: expired` (the session ran out, say while the machine slept), after which
//! the call is made again; with any credentials `connect` asks the broker
//! who the client is, so wrong credentials fail at connect rather than at the first request.

use std::sync::Arc;

use parking_lot::RwLock;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::error::{Error, Result};

/// The connection as every call uses it: the shared channel plus the bearer token.
pub(crate) type Conn = InterceptedService<Channel, Bearer>;

/// The token slot, and the tenant the client acts in; clones share them.
#[derive(Clone, Default)]
pub(crate) struct Bearer {
    value: Arc<RwLock<Option<MetadataValue<Ascii>>>>,
    /// `rapidmq-tenant`, for a cluster admin acting in another tenant.
    tenant: Option<MetadataValue<Ascii>>,
}

impl Bearer {
    /// Sends `rapidmq-tenant: <tenant>` with every request (a name `ClientConfig::validate`
    /// has checked).
    pub(crate) fn in_tenant(tenant: Option<&str>) -> Result<Bearer> {
        let tenant = tenant
            .map(|t| {
                t.parse::<MetadataValue<Ascii>>()
                    .map_err(|_| Error::invalid(format!("tenant `{t}` cannot be sent as a header")))
            })
            .transpose()?;
        Ok(Bearer {
            value: Arc::default(),
            tenant,
        })
    }

    /// Sends `token` with every request from now on.
    pub(crate) fn set(&self, token: &str) -> Result<()> {
        let value = format!("Bearer {token}")
            .parse::<MetadataValue<Ascii>>()
            .map_err(|_| Error::invalid("the token has characters a header cannot carry"))?;
        *self.value.write() = Some(value);
        Ok(())
    }

    /// What requests carry now.
    pub(crate) fn current(&self) -> Option<MetadataValue<Ascii>> {
        self.value.read().clone()
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = self.value.read().clone() {
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(tenant) = &self.tenant {
            request
                .metadata_mut()
                .insert(rapidmq_proto::TENANT_METADATA, tenant.clone());
        }
        Ok(request)
    }
}

/// Whether the broker refused a call because its token, with the right secret, has expired.
pub(crate) fn session_expired(status: &Status) -> bool {
    status.code() == Code::Unauthenticated
        && status
            .metadata()
            .get(rapidmq_proto::AUTH_REASON_METADATA)
            .is_some_and(|v| v.as_bytes() == rapidmq_proto::AUTH_REASON_EXPIRED.as_bytes())
}

/// When to log in again: at 80 % of the time left, at least 1 s from now.
pub(crate) fn refresh_delay(now_ms: u64, expires_at_ms: u64) -> std::time::Duration {
    let left = expires_at_ms.saturating_sub(now_ms);
    std::time::Duration::from_millis((left / 5 * 4).max(1_000))
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_renewed_at_four_fifths_of_its_life_and_never_in_a_tight_loop() {
        assert_eq!(refresh_delay(0, 10_000).as_millis(), 8_000);
        assert_eq!(refresh_delay(10_000, 10_100).as_millis(), 1_000);
        assert_eq!(refresh_delay(10_000, 5_000).as_millis(), 1_000);
    }

    #[test]
    fn only_an_unauthenticated_answer_with_the_reason_expired_means_the_session_expired() {
        let with_reason = |code, reason: &'static str| {
            let mut status = Status::new(code, "invalid or expired credentials");
            status.metadata_mut().insert(
                rapidmq_proto::AUTH_REASON_METADATA,
                MetadataValue::from_static(reason),
            );
            status
        };
        assert!(session_expired(&with_reason(
            Code::Unauthenticated,
            "expired"
        )));
        assert!(!session_expired(&with_reason(
            Code::Unauthenticated,
            "other"
        )));
        assert!(!session_expired(&with_reason(
            Code::PermissionDenied,
            "expired"
        )));
        assert!(!session_expired(&Status::unauthenticated("no reason")));
    }

    #[test]
    fn the_bearer_is_sent_once_set() {
        let mut bearer = Bearer::default();
        let request = bearer.call(tonic::Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
        bearer.set("rmq_x").unwrap();
        let request = bearer.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer rmq_x"
        );
        assert!(bearer.set("bad\ntoken").is_err());
    }
}
