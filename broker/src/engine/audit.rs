//! The engine's side of the audit log (`crate::audit`): the failure writer and retention
//! tasks, and queries. Admin changes are recorded by [`Engine::apply_audited`] and
//! [`Engine::apply_auth_audited`], in the same write as the change.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Engine, MetaCommand, health};
use crate::audit::{self, Audit, AuditPage, AuditQuery};
use crate::auth::{Action, AuthCommand, Resource};
use crate::error::{Error, Result};
use crate::principal::Principal;
use crate::storage::Store;

/// How often records older than `audit.retention_ms` are deleted.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

impl Engine {
    /// Applies an auth change with its audit record in the same write. Call with `meta_lock`
    /// held.
    pub(super) async fn apply_auth_audited(
        &self,
        command: AuthCommand,
        audit: Audit,
    ) -> Result<()> {
        self.apply_audited(MetaCommand::Auth(command), audit).await
    }

    /// Starts the task that writes authentication failures and denials (`audit::run`),
    /// supervised like the other background tasks.
    pub(super) fn start_audit_writer(&self) -> JoinHandle<()> {
        let failures = self.audit_failures.lock().take();
        let (stamp, store) = (self.audit.stamp.clone(), self.disk.clone());
        let (health, stopping) = (self.health.clone(), self.stopping.subscribe());
        self.runtime.spawn(async move {
            let Some(failures) = failures else { return };
            // Not restarted after a panic: the receiver went with it. `catch` logs the panic.
            health::catch(
                &health,
                "audit-writer",
                audit::run(failures, stamp, store, stopping),
            )
            .await;
        })
    }

    /// Deletes the audit records older than `audit.retention_ms` (none when it is 0).
    pub(super) async fn expire_audit(&self) {
        let retention = self.config.audit.retention_ms;
        if retention == 0 || self.disk.failure().is_some() {
            return;
        }
        let before = self.auth.now_ms().saturating_sub(retention);
        let disk = self.disk.clone();
        match tokio::task::spawn_blocking(move || audit::expire(&*disk, before)).await {
            Ok(Ok(())) => tracing::debug!(before_ms = before, "expired audit records deleted"),
            Ok(Err(err)) => tracing::error!(cause = %err, "deleting expired audit records failed"),
            Err(err) => tracing::error!(cause = %err, "audit retention task failed"),
        }
    }

    /// A page of the audit log. Needs `Admin` on the tenant, and shows that tenant's records;
    /// a cluster admin (`Admin` on the cluster) sees every tenant's.
    pub async fn list_audit(
        &self,
        principal: &Principal,
        mut query: AuditQuery,
    ) -> Result<AuditPage> {
        self.authorize(principal, Action::Admin, Resource::Tenant)?;
        query.tenant = match self.auth.check(principal, Action::Admin, Resource::Cluster) {
            Ok(()) => None,
            Err(_) => Some(principal.tenant().to_string()),
        };
        let disk = self.disk.clone();
        tokio::task::spawn_blocking(move || audit::page(&*disk as &dyn Store, &query))
            .await
            .map_err(|err| Error::internal(format!("audit query task failed: {err}")))?
    }
}
