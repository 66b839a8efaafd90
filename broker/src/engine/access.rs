//! Authorization at the engine's entry points (docs/adr/0004-security.md §6): each operation
//! checks one action on one resource through [`crate::auth::Auth::authorize`], first, before
//! any lookup, so that a refusal never depends on whether the resource exists. The checks live
//! here and not in the transports, so gRPC, REST, SSE and WebSocket cannot diverge.
//!
//! Lists (topics, subscriptions, flow events) are never refused for an authenticated caller:
//! they show the items it may describe. An open consumer keeps checking its grant through
//! [`AccessWatch`], so unbinding a role or revoking a token ends it within one wakeup.

use std::sync::Arc;

use crate::auth::{Action, Auth, CredentialWatch, Resource};
use crate::error::Result;
use crate::principal::Principal;

use super::Engine;

impl Engine {
    /// Whether `principal` may do `action` to `resource`. The system principal always may.
    pub(super) fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<()> {
        self.auth.authorize(principal, action, resource)
    }

    /// Refuses anonymous callers while auth is on; any authenticated caller passes. For the
    /// operations that need no permission (lists, which filter instead; WhoAmI).
    pub fn authenticated(&self, principal: &Principal) -> Result<()> {
        self.auth.authenticated(principal)
    }

    /// Whether a list shows an item to `principal`: it may describe it.
    pub(super) fn visible(&self, principal: &Principal, resource: Resource<'_>) -> bool {
        self.auth
            .check(principal, Action::Describe, resource)
            .is_ok()
    }

    /// What a consumer of `subscription` served by another node watches here (a REST live
    /// session that takes from the subscription's coordinator, whose session runs as the
    /// broker) to end when `principal`'s credential stops working or it loses `Consume` on the
    /// subscription; `None` when nothing can end it (auth off, not a user).
    pub fn consume_watch(
        &self,
        principal: &Principal,
        topic: &str,
        subscription: &str,
    ) -> Option<AccessWatch> {
        let grant = Grant::Subscription {
            topic: topic.to_string(),
            name: subscription.to_string(),
        };
        self.access_watch(principal, grant)
    }

    /// What an open consumer of `principal` watches to end when its credential stops working or
    /// it loses `Consume` on `grant`; `None` when nothing can end it (auth off, not a user).
    pub(super) fn access_watch(&self, principal: &Principal, grant: Grant) -> Option<AccessWatch> {
        self.auth.watch(principal).map(|credential| AccessWatch {
            credential,
            auth: self.auth.clone(),
            principal: principal.clone(),
            grant,
        })
    }
}

/// What an open consumer was allowed to consume.
#[derive(Debug, Clone)]
pub(super) enum Grant {
    /// An ephemeral tail of a topic.
    Topic(String),
    Subscription {
        topic: String,
        name: String,
    },
}

impl Grant {
    pub(super) fn resource(&self) -> Resource<'_> {
        match self {
            Grant::Topic(topic) => Resource::Topic(topic),
            Grant::Subscription { topic, name } => Resource::Subscription { topic, name },
        }
    }
}

/// Ends an open consumer when its credential stops working (revoked, expired: as
/// [`CredentialWatch`]) or its roles no longer let it consume (a role unbound, changed or
/// deleted): both change the auth epoch, which wakes [`AccessWatch::changed`].
pub struct AccessWatch {
    credential: CredentialWatch,
    auth: Arc<Auth>,
    principal: Principal,
    grant: Grant,
}

impl AccessWatch {
    /// `UNAUTHENTICATED` once the credential no longer works, `PERMISSION_DENIED` once the
    /// caller may no longer consume what it opened.
    pub fn check(&self) -> Result<()> {
        self.credential.check()?;
        self.auth
            .authorize(&self.principal, Action::Consume, self.grant.resource())
    }

    /// Resolves when the answer of [`AccessWatch::check`] may have changed. Cancel-safe.
    pub async fn changed(&mut self) {
        self.credential.changed().await
    }
}
