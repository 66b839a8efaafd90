//! REST queue consumers: the queue sessions that long-poll requests claim messages through.
//!
//! A queue session must outlive the request that claimed messages, because dropping it gives its
//! in-flight messages back to the other consumers. So each `(topic, subscription, consumer)`
//! keeps one engine session here between requests. The map is bounded (`http.max_consumers`,
//! beyond which a new consumer gets `RESOURCE_EXHAUSTED`), and a consumer idle for
//! `http.consumer_idle_timeout_ms` is dropped, releasing whatever it still had in flight. See
//! `docs/adr/0003-rest-consumers.md`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rapidmq_proto::ErrorCode;
use tokio::time::Instant;

use super::error::ApiError;
use crate::engine::{Engine, QueueDelivery, QueueSession, Session, SubscriptionMode};
use crate::principal::Principal;

/// Tenant, user, topic, subscription, consumer: a session opened for one user is never handed to
/// another, whose own grant (and credential) then keeps it open.
type Key = (String, Option<String>, String, String, String);

fn key(principal: &Principal, topic: &str, subscription: &str, consumer: &str) -> Key {
    (
        principal.tenant().to_string(),
        principal.name().map(str::to_string),
        topic.to_string(),
        subscription.to_string(),
        consumer.to_string(),
    )
}

struct Consumer {
    session: tokio::sync::Mutex<QueueSession>,
    last_used: Mutex<Instant>,
}

pub struct QueueConsumers {
    consumers: Mutex<HashMap<Key, Arc<Consumer>>>,
    max: usize,
    idle: Duration,
}

impl QueueConsumers {
    pub fn new(max: usize, idle: Duration) -> QueueConsumers {
        QueueConsumers {
            consumers: Mutex::new(HashMap::new()),
            max,
            idle,
        }
    }

    /// Claims up to `max` messages for `consumer`, waiting until `deadline` for the first.
    #[allow(clippy::too_many_arguments)]
    pub async fn poll(
        &self,
        engine: &Engine,
        principal: &Principal,
        topic: &str,
        subscription: &str,
        consumer: &str,
        max: u32,
        deadline: Instant,
    ) -> Result<Vec<QueueDelivery>, ApiError> {
        let key = key(principal, topic, subscription, consumer);
        let entry = self.get_or_join(engine, principal, &key).await?;
        let mut session = match tokio::time::timeout_at(deadline, entry.session.lock()).await {
            Ok(session) => session,
            // Another request of the same consumer held the session the whole time.
            Err(_) => return Ok(Vec::new()),
        };
        *entry.last_used.lock() = Instant::now();
        let result = tokio::time::timeout_at(deadline, session.next(engine, max)).await;
        *entry.last_used.lock() = Instant::now();
        match result {
            Ok(Ok(deliveries)) => {
                engine.observe_queue_deliveries(
                    session.topic(),
                    session.subscription().name(),
                    &deliveries,
                );
                Ok(deliveries)
            }
            Ok(Err(err)) => {
                drop(session);
                self.consumers.lock().remove(&key);
                Err(err.into())
            }
            Err(_) => Ok(Vec::new()),
        }
    }

    async fn get_or_join(
        &self,
        engine: &Engine,
        principal: &Principal,
        key: &Key,
    ) -> Result<Arc<Consumer>, ApiError> {
        if let Some(entry) = self.consumers.lock().get(key) {
            return Ok(entry.clone());
        }
        if self.consumers.lock().len() >= self.max {
            return Err(ApiError::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "the broker already serves {} REST queue consumers (http.max_consumers); retry later",
                    self.max
                ),
            ));
        }
        let (_, _, topic, subscription, consumer) = key;
        let session = engine
            .subscribe(
                principal,
                topic,
                Some(subscription),
                SubscriptionMode::Queue,
                Default::default(),
                None,
                consumer,
            )
            .await?;
        let Session::Queue(session) = session else {
            return Err(
                crate::Error::internal("a queue subscribe returned a stream session").into(),
            );
        };
        let entry = Arc::new(Consumer {
            session: tokio::sync::Mutex::new(session),
            last_used: Mutex::new(Instant::now()),
        });
        // A concurrent first request may have joined meanwhile: keep the first, drop ours.
        Ok(self
            .consumers
            .lock()
            .entry(key.clone())
            .or_insert(entry)
            .clone())
    }

    /// Drops `consumer`'s session of `subscription` (opened for `principal`): what it holds
    /// and was not acked goes back to the others once no request uses it.
    pub fn close(&self, principal: &Principal, topic: &str, subscription: &str, consumer: &str) {
        self.consumers
            .lock()
            .remove(&key(principal, topic, subscription, consumer));
    }

    /// Drops the consumers of a deleted subscription.
    pub fn forget_subscription(&self, topic: &str, subscription: &str) {
        self.consumers
            .lock()
            .retain(|(_, _, t, s, _), _| !(t == topic && s == subscription));
    }

    /// Drops consumers idle for longer than the idle timeout; returns how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut consumers = self.consumers.lock();
        let before = consumers.len();
        consumers.retain(|_, c| {
            let busy = c.session.try_lock().is_err();
            busy || now.saturating_duration_since(*c.last_used.lock()) < self.idle
        });
        before - consumers.len()
    }

    /// Sweeps every half idle timeout until `owner` is dropped.
    pub fn spawn_sweeper<T: Send + Sync + 'static>(
        owner: Weak<T>,
        consumers: impl Fn(&T) -> &QueueConsumers + Send + 'static,
        idle: Duration,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval((idle / 2).max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                let Some(owner) = owner.upgrade() else { return };
                let dropped = consumers(&owner).sweep(Instant::now());
                if dropped > 0 {
                    tracing::debug!(dropped, "idle REST queue consumers dropped");
                }
            }
        });
    }
}
