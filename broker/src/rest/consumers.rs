//! REST consumers kept between requests: the queue sessions that long-poll requests claim
//! messages through, and (cluster mode) the stream sessions that another node's live session
//! takes messages through on the subscription's coordinator.
//!
//! A queue session must outlive the request that claimed messages, because dropping it gives its
//! in-flight messages back to the other consumers; a live stream session relayed from another
//! node keeps its group membership and its position between that node's requests. So each
//! `(topic, subscription, consumer)` keeps one engine session here between requests. The map is
//! bounded (`http.max_consumers`, beyond which a new consumer gets `RESOURCE_EXHAUSTED`), and a
//! consumer idle for `http.consumer_idle_timeout_ms` is dropped, releasing whatever it still
//! had in flight. See `docs/adr/0003-rest-consumers.md`.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rapidmq_proto::ErrorCode;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::consume::{Taken, take_stream};
use super::error::ApiError;
use crate::engine::{Engine, QueueDelivery, Session, SubscriptionMode};
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
    session: Arc<tokio::sync::Mutex<Session>>,
    /// A stream session's group member id, readable while a take holds the session.
    member: Option<String>,
    last_used: Mutex<Instant>,
}

pub struct Consumers {
    consumers: Mutex<HashMap<Key, Arc<Consumer>>>,
    max: usize,
    idle: Duration,
}

impl Consumers {
    pub fn new(max: usize, idle: Duration) -> Consumers {
        Consumers {
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
        let mode = SubscriptionMode::Queue;
        let Some((entry, mut session)) = self.lock(engine, principal, &key, mode, deadline).await?
        else {
            return Ok(Vec::new());
        };
        let Session::Queue(session) = &mut *session else {
            self.consumers.lock().remove(&key);
            return Err(mode_changed());
        };
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
                self.consumers.lock().remove(&key);
                Err(err.into())
            }
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Takes up to `max` messages from `consumer`'s stream session of `subscription`, joining
    /// its group on the first call; waits until `deadline` for the first. The session keeps
    /// its position between calls. A session that fails (this node stopped coordinating the
    /// group) is dropped with its membership.
    #[allow(clippy::too_many_arguments)]
    pub async fn take_stream(
        &self,
        engine: &Engine,
        principal: &Principal,
        topic: &str,
        subscription: &str,
        consumer: &str,
        max: u32,
        deadline: Instant,
    ) -> Result<Taken, ApiError> {
        let key = key(principal, topic, subscription, consumer);
        let mode = SubscriptionMode::Stream;
        let Some((entry, mut session)) = self.lock(engine, principal, &key, mode, deadline).await?
        else {
            return Ok(Taken::default());
        };
        let Session::Stream(session) = &mut *session else {
            self.consumers.lock().remove(&key);
            return Err(mode_changed());
        };
        let result = take_stream(session, max, deadline).await;
        *entry.last_used.lock() = Instant::now();
        if result.is_err() {
            self.consumers.lock().remove(&key);
        }
        result
    }

    /// Commits `offsets` as `consumer`'s stream session of `subscription` (its group member):
    /// refused for partitions no longer assigned to it, and with `UNAVAILABLE` when this node
    /// holds no such session (dropped when idle, or never joined here).
    pub async fn commit_stream(
        &self,
        engine: &Engine,
        principal: &Principal,
        topic: &str,
        subscription: &str,
        consumer: &str,
        offsets: &[(u32, u64)],
    ) -> Result<(), ApiError> {
        let key = key(principal, topic, subscription, consumer);
        let Some(entry) = self.consumers.lock().get(&key).cloned() else {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the live session's group membership ended on the coordinator; open a new one",
            ));
        };
        let Some(member) = &entry.member else {
            return Err(mode_changed());
        };
        *entry.last_used.lock() = Instant::now();
        Ok(engine
            .commit(principal, topic, subscription, offsets, Some(member))
            .await?)
    }

    /// `key`'s consumer (joined in `mode` if new) and its session, locked: `None` when another
    /// request of the same consumer held it until `deadline`.
    async fn lock(
        &self,
        engine: &Engine,
        principal: &Principal,
        key: &Key,
        mode: SubscriptionMode,
        deadline: Instant,
    ) -> Result<Option<(Arc<Consumer>, OwnedMutexGuard<Session>)>, ApiError> {
        let entry = self.get_or_join(engine, principal, key, mode).await?;
        let locked = tokio::time::timeout_at(deadline, entry.session.clone().lock_owned()).await;
        let Ok(session) = locked else {
            return Ok(None);
        };
        *entry.last_used.lock() = Instant::now();
        Ok(Some((entry, session)))
    }

    async fn get_or_join(
        &self,
        engine: &Engine,
        principal: &Principal,
        key: &Key,
        mode: SubscriptionMode,
    ) -> Result<Arc<Consumer>, ApiError> {
        if let Some(entry) = self.consumers.lock().get(key) {
            return Ok(entry.clone());
        }
        if self.consumers.lock().len() >= self.max {
            return Err(ApiError::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "the broker already serves {} REST consumers (http.max_consumers); retry later",
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
                mode,
                Default::default(),
                None,
                consumer,
            )
            .await?;
        let member = match &session {
            Session::Stream(stream) => stream.member_id().map(str::to_string),
            Session::Queue(_) => None,
        };
        let entry = Arc::new(Consumer {
            session: Arc::new(tokio::sync::Mutex::new(session)),
            member,
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

    /// Drops `consumer`'s session of `subscription` (opened for `principal`): what a queue
    /// session holds and was not acked goes back to the others, and a stream session leaves
    /// its group, once no request uses it.
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
        consumers: impl Fn(&T) -> &Consumers + Send + 'static,
        idle: Duration,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval((idle / 2).max(Duration::from_millis(10)));
            loop {
                tick.tick().await;
                let Some(owner) = owner.upgrade() else { return };
                let dropped = consumers(&owner).sweep(Instant::now());
                if dropped > 0 {
                    tracing::debug!(dropped, "idle REST consumers dropped");
                }
            }
        });
    }
}

/// The subscription was deleted and created again in the other mode while its consumer was
/// kept here.
fn mode_changed() -> ApiError {
    ApiError::new(
        ErrorCode::SubscriptionModeMismatch,
        "the subscription changed mode; poll again",
    )
}
