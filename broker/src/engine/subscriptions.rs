//! The subscription half of the engine's service API: creating, joining, committing, seeking
//! and deleting subscriptions of both modes, and their admin snapshots.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use rapidmq_proto::ErrorCode;

use super::access::Grant;
use super::partition::Partition;
use super::subscription::{Subscription, SubscriptionRecord};
use super::topic::Topic;
use super::{
    ConsumerChange, Engine, MetaCommand, PartitionEntry, PartitionView, QueueSession,
    QueueSettings, QueueSpec, Session, StartAt, StartPosition, StreamSession, SubscriptionMode,
    SubscriptionStatus,
};
use crate::audit::Audit;
use crate::auth::{Action, Resource};
use crate::error::{Error, Result, check_name};
use crate::principal::{Principal, TenantId};

impl Engine {
    pub(super) async fn resolve_start(
        &self,
        topic: &Topic,
        start: StartPosition,
    ) -> Result<Vec<u64>> {
        // A partition this node holds no replica of is resolved against its group's log.
        let remote = self.remote_views(topic, None, |_| true).await?;
        let mut offsets = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let shared = partition.shared();
            let index = shared.index;
            let (log_start, hw) = remote.get(&index).map_or_else(
                || (shared.log_start(), shared.high_watermark()),
                |view| (view.log_start, view.high_watermark),
            );
            offsets.push(match start {
                StartPosition::Latest => hw,
                StartPosition::Earliest => log_start,
                StartPosition::Offset(o) => o.clamp(log_start, hw),
                StartPosition::Timestamp(_) if remote.contains_key(&index) => {
                    return Err(Error::unavailable(format!(
                        "this node holds no replica of partition {index} of `{}` to find a \
                         timestamp in: send the request to one of its replicas (`topic describe` \
                         lists them)",
                        topic.name()
                    )));
                }
                StartPosition::Timestamp(ts) => shared.offset_for_timestamp(ts).await?,
            });
        }
        Ok(offsets)
    }

    /// The subscription `name` of `topic`, created if it does not exist (or refused if it does
    /// and `must_create`). Creating needs `Create` on it, and in queue mode `Publish` on its
    /// dead-letter topic, which the broker then writes as the system principal.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn get_or_create_subscription(
        &self,
        principal: &Principal,
        topic: &Arc<Topic>,
        name: &str,
        mode: SubscriptionMode,
        start: StartPosition,
        queue: Option<&QueueSpec>,
        must_create: bool,
    ) -> Result<Arc<Subscription>> {
        check_name("subscription", name)?;
        let _guard = self.meta_lock.lock().await;
        if let Some(existing) = topic.subscriptions.read().get(name) {
            if must_create {
                return Err(Error::new(
                    ErrorCode::SubscriptionAlreadyExists,
                    format!(
                        "subscription `{name}` already exists on topic `{}`",
                        topic.name()
                    ),
                ));
            }
            if existing.record.mode != mode {
                return Err(Error::new(
                    ErrorCode::SubscriptionModeMismatch,
                    format!("subscription `{name}` has another mode"),
                ));
            }
            return Ok(existing.clone());
        }
        let resource = Resource::Subscription {
            topic: topic.name(),
            name,
        };
        self.authorize(principal, Action::Create, resource)?;
        self.check_subscription_quota(&topic.tenant)?;
        let queue = match mode {
            SubscriptionMode::Stream => None,
            SubscriptionMode::Queue => {
                let settings =
                    self.resolve_queue_settings(topic, queue.cloned().unwrap_or_default())?;
                let dead_letters = Resource::Topic(&settings.dead_letter_topic);
                self.authorize(principal, Action::Publish, dead_letters)?;
                Some(settings)
            }
        };
        let cursors = self.resolve_start(topic, start).await?;
        let record = SubscriptionRecord {
            name: name.to_string(),
            mode,
            created_at_ms: self.clock.now_ms(),
            queue,
        };
        let audit = Audit::new(
            principal,
            "subscription.create",
            format!("subscription:{}/{name}", topic.name()),
        )
        .detail(match mode {
            SubscriptionMode::Stream => "stream mode",
            SubscriptionMode::Queue => "queue mode",
        });
        let command = MetaCommand::CreateSubscription {
            topic_id: topic.id(),
            record: record.clone(),
            cursors: cursors.clone(),
        };
        match self.apply_audited(command, audit).await {
            Ok(()) => {
                self.start_in_groups(topic, name, mode, start, &cursors)
                    .await
            }
            // In a cluster, created meanwhile through another node: subscribe to that one.
            Err(err) if !must_create && err.code() == ErrorCode::SubscriptionAlreadyExists => {}
            Err(err) => return Err(err),
        }
        let sub = self.subscription(topic, name)?;
        tracing::info!(topic = %topic.name(), subscription = name, "subscription created");
        Ok(sub)
    }

    /// Cluster mode: fixes a just created subscription's start on each replicated partition
    /// through the partition's group ([`ConsumerChange::Start`]). The metadata apply started
    /// it from each node's own log (a node that is not a replica, or lags, would start
    /// `latest` early); the group's entry puts it at the same offset on every replica. A
    /// timestamp start keeps the offset this node found for it. Not fatal: when a group
    /// cannot take the entry, that partition keeps the start each replica gave it (logged).
    async fn start_in_groups(
        &self,
        topic: &Topic,
        name: &str,
        mode: SubscriptionMode,
        start: StartPosition,
        cursors: &[u64],
    ) {
        if self.partition_host.get().is_none() {
            return;
        }
        let queue = mode == SubscriptionMode::Queue;
        let entries: Vec<PartitionEntry> = topic
            .partitions
            .iter()
            .zip(cursors)
            .filter(|(partition, _)| partition.replicated())
            .map(|(partition, &cursor)| {
                let at = match start {
                    StartPosition::Latest => StartAt::Latest,
                    StartPosition::Earliest => StartAt::Earliest,
                    StartPosition::Offset(offset) => StartAt::Offset(offset),
                    StartPosition::Timestamp(_) => StartAt::Offset(cursor),
                };
                let change = ConsumerChange::Start { at, queue };
                PartitionEntry::new(topic.id(), partition.shared().index, name, change)
            })
            .collect();
        if let Err(err) = self.apply_partition(&entries, None).await {
            tracing::warn!(topic = %topic.name(), subscription = name, cause = %err, "a new subscription's start could not be fixed through its partitions' groups; each replica keeps the start it found in its own log");
        }
    }

    /// Refuses a new subscription when the tenant has `limits.max_subscriptions_per_tenant`.
    fn check_subscription_quota(&self, tenant: &TenantId) -> Result<()> {
        let max = self.config.limits.max_subscriptions_per_tenant;
        let count: usize = self
            .topics
            .read()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, live)| live.topic.subscriptions.read().len())
            .sum();
        if count >= max {
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "the tenant has {count} subscriptions, the most it may have (limits.max_subscriptions_per_tenant); delete one first"
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a new consumer when the tenant's subscriptions have
    /// `limits.max_members_per_tenant` members. Concurrent joins may overshoot by a few.
    fn check_member_quota(&self, tenant: &TenantId) -> Result<()> {
        let max = self.config.limits.max_members_per_tenant;
        let subscriptions: Vec<Arc<Subscription>> = self
            .topics
            .read()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|(_, live)| {
                live.topic
                    .subscriptions
                    .read()
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        let count: usize = subscriptions.iter().map(|s| s.members().len()).sum();
        if count >= max {
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                format!(
                    "the tenant's subscriptions have {count} consumers, the most they may have (limits.max_members_per_tenant)"
                ),
            ));
        }
        Ok(())
    }

    fn resolve_queue_settings(&self, topic: &Topic, spec: QueueSpec) -> Result<QueueSettings> {
        let defaults = &self.config.queue;
        let max_deliveries = spec
            .max_deliveries
            .unwrap_or(defaults.default_max_deliveries);
        if max_deliveries == 0 {
            return Err(Error::invalid("max_deliveries must be at least 1"));
        }
        let ack_deadline_ms = spec
            .ack_deadline_ms
            .unwrap_or(defaults.default_ack_deadline_ms);
        if ack_deadline_ms == 0 {
            return Err(Error::invalid("ack_deadline_ms must be at least 1"));
        }
        let dead_letter_topic = spec
            .dead_letter_topic
            .unwrap_or_else(|| format!("{}.dlq", topic.name()));
        check_name("dead-letter topic", &dead_letter_topic)?;
        if dead_letter_topic == topic.name() {
            return Err(Error::invalid(
                "a topic cannot be its own dead-letter topic",
            ));
        }
        Ok(QueueSettings {
            ack_deadline_ms,
            max_deliveries,
            dead_letter_topic,
        })
    }

    pub(super) fn subscription(&self, topic: &Topic, name: &str) -> Result<Arc<Subscription>> {
        check_name("subscription", name)?;
        topic
            .subscriptions
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::subscription_not_found(topic.name(), name))
    }

    /// Starts a consumer session. With a subscription name, joins (creating it if needed, from
    /// `start`, in `mode`) its group; without one, tails every partition from `start`,
    /// persisting nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn subscribe(
        &self,
        principal: &Principal,
        topic: &str,
        subscription: Option<&str>,
        mode: SubscriptionMode,
        start: StartPosition,
        queue: Option<&QueueSpec>,
        consumer_name: &str,
    ) -> Result<Session> {
        let grant = match subscription {
            Some(name) => Grant::Subscription {
                topic: topic.to_string(),
                name: name.to_string(),
            },
            None => Grant::Topic(topic.to_string()),
        };
        self.authorize(principal, Action::Consume, grant.resource())?;
        let live = self.topic(principal, topic)?;
        let closed = self
            .topic_closed(principal, topic)
            .ok_or_else(|| Error::topic_not_found(topic))?;
        if subscription.is_some() {
            self.check_member_quota(principal.tenant())?;
        }
        match (subscription, mode) {
            (Some(name), SubscriptionMode::Stream) => {
                let sub = self
                    .get_or_create_subscription(principal, &live, name, mode, start, None, false)
                    .await?;
                // The member starts from the cursors this node has: first the groups' own, so
                // it does not redeliver (and commit back) what a consumer through another node
                // committed a moment ago. A partition whose group has no leader now starts
                // from this node's view rather than keep the others from being consumed.
                if let Err(err) = self.caught_up(&live).await {
                    tracing::debug!(topic, subscription = name, %err, "joining with this node's cursors");
                }
                let member = sub.join(consumer_name);
                Ok(Session::Stream(
                    StreamSession::member(live, member, closed, self.observer())
                        .watching(self.access_watch(principal, grant)),
                ))
            }
            (Some(name), SubscriptionMode::Queue) => {
                let sub = self
                    .get_or_create_subscription(principal, &live, name, mode, start, queue, false)
                    .await?;
                Ok(Session::Queue(
                    QueueSession::new(live, sub, consumer_name, closed)
                        .watching(self.access_watch(principal, grant)),
                ))
            }
            (None, SubscriptionMode::Stream) => {
                let starts = self.resolve_start(&live, start).await?;
                Ok(Session::Stream(
                    StreamSession::ephemeral(live, starts, closed, self.observer())
                        .watching(self.access_watch(principal, grant)),
                ))
            }
            (None, SubscriptionMode::Queue) => {
                Err(Error::invalid("a queue subscription needs a name"))
            }
        }
    }

    /// Cluster mode: the partition of `topic` whose group's leader coordinates stream
    /// subscription `name`: keeps its members and their assignment, so that members joining
    /// through different nodes split the partitions instead of each taking all of them
    /// (docs/clustering.md "Stream consumer groups"). `Some(partition)` when this node is that
    /// leader (holding its lease); `UNAVAILABLE` with a leader hint naming the coordinator
    /// otherwise. `None` for a topic not replicated (single-node mode), which every node
    /// coordinates for itself.
    pub fn stream_coordinator(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
    ) -> Result<Option<u32>> {
        let Some((live, index)) = self.coordinating_partition(principal, topic, name)? else {
            return Ok(None);
        };
        let partition = &live.partitions[index as usize];
        if partition.leads_with_lease() {
            return Ok(Some(index));
        }
        Err(partition.hinted(
            Error::unavailable(format!(
                "stream subscription `{name}` of topic `{topic}` is coordinated by the leader of \
                 partition {index}, not this node: join through that node"
            )),
            topic,
        ))
    }

    /// The partition of `topic` whose group's leader coordinates stream subscription `name`,
    /// once the caller may consume it; `None` for a topic not replicated.
    pub(super) fn coordinating_partition(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
    ) -> Result<Option<(Arc<Topic>, u32)>> {
        self.authorize(
            principal,
            Action::Consume,
            Resource::Subscription { topic, name },
        )?;
        let live = self.topic(principal, topic)?;
        Ok(coordinator_partition(&live, name).map(|index| (live, index)))
    }

    /// Commits offsets (next offset to consume) for a subscription. With `member`, only the
    /// partitions that member owns may be committed.
    pub async fn commit(
        &self,
        principal: &Principal,
        topic: &str,
        subscription: &str,
        offsets: &[(u32, u64)],
        member: Option<&str>,
    ) -> Result<()> {
        let resource = Resource::Subscription {
            topic,
            name: subscription,
        };
        self.authorize(principal, Action::Consume, resource)?;
        self.move_cursor(principal, topic, subscription, offsets, member, None)
            .await
    }

    /// [`Engine::commit`] for callers that checked their own action (a seek, a replay).
    pub(super) async fn move_cursor(
        &self,
        principal: &Principal,
        topic: &str,
        subscription: &str,
        offsets: &[(u32, u64)],
        member: Option<&str>,
        audit: Option<Audit>,
    ) -> Result<()> {
        let live = self.topic(principal, topic)?;
        let sub = self.subscription(&live, subscription)?;
        if sub.queue.is_some() && member.is_some() {
            return Err(Error::new(
                ErrorCode::SubscriptionModeMismatch,
                format!(
                    "`{subscription}` is a queue subscription: ack messages instead of committing offsets"
                ),
            ));
        }
        // A partition this node holds no replica of is checked against its group's log.
        let remote = self
            .remote_views(&live, None, |p| {
                offsets.iter().any(|&(asked, _)| asked == p)
            })
            .await?;
        for &(p, offset) in offsets {
            let partition = live.partition(p).ok_or_else(|| {
                Error::new(
                    ErrorCode::PartitionNotFound,
                    format!("topic `{topic}` has no partition {p}"),
                )
            })?;
            let hw = remote
                .get(&p)
                .map_or_else(|| partition.shared().high_watermark(), |v| v.high_watermark);
            if offset > hw {
                return Err(Error::new(
                    ErrorCode::OffsetOutOfRange,
                    format!(
                        "cannot commit offset {offset} on partition {p}: the high watermark is {hw}"
                    ),
                ));
            }
            if let Some(member) = member
                && !sub.owns(member, p)
            {
                return Err(Error::new(
                    ErrorCode::NotPartitionOwner,
                    format!(
                        "partition {p} is no longer assigned to this consumer; the commit was dropped"
                    ),
                ));
            }
        }
        let (change, _guard): (fn(u64) -> ConsumerChange, _) = match &sub.queue {
            None => (ConsumerChange::Commit, None),
            // A seek on a queue subscription restarts its delivery state at the offset: the
            // cursor and the fresh ack state are one write. The queue state lock keeps an interval
            // flush of the old state from landing after it.
            Some(_) => (
                ConsumerChange::SeekQueue,
                Some(self.queue_state_lock.lock().await),
            ),
        };
        let entries: Vec<PartitionEntry> = offsets
            .iter()
            .map(|&(p, offset)| PartitionEntry::new(live.id(), p, subscription, change(offset)))
            .collect();
        self.apply_partition(&entries, audit).await
    }

    pub async fn create_subscription(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
        mode: SubscriptionMode,
        start: StartPosition,
        queue: Option<&QueueSpec>,
    ) -> Result<SubscriptionStatus> {
        self.authorize(
            principal,
            Action::Create,
            Resource::Subscription { topic, name },
        )?;
        let live = self.topic(principal, topic)?;
        let sub = self
            .get_or_create_subscription(principal, &live, name, mode, start, queue, true)
            .await?;
        Ok(subscription_status(&live, &sub))
    }

    /// The subscriptions (of one topic, or of every topic of the caller's tenant) that the
    /// caller may describe. Never refused but for anonymous callers while auth is on; a topic
    /// that does not exist is `TOPIC_NOT_FOUND` only to callers who may describe it, so the
    /// answer tells no one else whether it exists.
    ///
    /// In cluster mode the partitions this node holds no replica of are listed as their
    /// groups' leaders have them (high watermark, the subscription's committed offset), as
    /// describing the subscription does; a leader that cannot be asked leaves this node's
    /// figures for the subscription rather than failing the listing.
    pub async fn list_subscriptions(
        &self,
        principal: &Principal,
        topic: Option<&str>,
    ) -> Result<Vec<SubscriptionStatus>> {
        /// Subscriptions whose remote figures are asked at once.
        const SUBSCRIPTIONS_AT_ONCE: usize = 16;
        self.authenticated(principal)?;
        let topics = match topic {
            Some(name) => match self.topic(principal, name) {
                Ok(topic) => vec![topic],
                Err(err) if self.visible(principal, Resource::Topic(name)) => return Err(err),
                Err(_) => Vec::new(),
            },
            None => {
                let mut all: Vec<Arc<Topic>> = self
                    .topics
                    .read()
                    .iter()
                    .filter(|((tenant, _), _)| tenant == principal.tenant())
                    .map(|(_, live)| live.topic.clone())
                    .collect();
                all.sort_by(|a, b| a.name().cmp(b.name()));
                all
            }
        };
        let listed: Vec<(Arc<Topic>, Arc<Subscription>)> = topics
            .iter()
            .flat_map(|t| {
                t.subscriptions
                    .read()
                    .values()
                    .filter(|s| {
                        let resource = Resource::Subscription {
                            topic: t.name(),
                            name: s.name(),
                        };
                        self.visible(principal, resource)
                    })
                    .map(|s| (Arc::clone(t), Arc::clone(s)))
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(futures::stream::iter(listed)
            .map(|(topic, sub)| async move {
                match self.remote_views(&topic, Some(sub.name()), |_| true).await {
                    Ok(remote) => subscription_status_with(&topic, &sub, &remote),
                    Err(err) => {
                        tracing::debug!(
                            topic = %topic.name(),
                            subscription = %sub.name(),
                            cause = %err,
                            "listing a subscription with this node's figures"
                        );
                        subscription_status(&topic, &sub)
                    }
                }
            })
            .buffered(SUBSCRIPTIONS_AT_ONCE)
            .collect()
            .await)
    }

    /// A subscription's state. In cluster mode this node first catches up with what each
    /// partition's group committed ([`Engine::caught_up`]): a commit that returned is in the
    /// answer, whichever node it went through, and no answer is older than one before it.
    pub async fn describe_subscription(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
    ) -> Result<SubscriptionStatus> {
        self.authorize(
            principal,
            Action::Describe,
            Resource::Subscription { topic, name },
        )?;
        let live = self.topic(principal, topic)?;
        let sub = self.subscription(&live, name)?;
        self.caught_up(&live).await?;
        let remote = self.remote_views(&live, Some(name), |_| true).await?;
        Ok(subscription_status_with(&live, &sub, &remote))
    }

    /// The partitions of `topic` this node holds no replica of, as their groups' leaders have
    /// them ([`Partition::remote_view`](super::partition::Partition::remote_view)), all asked
    /// at once, of the partitions `which` picks; with `subscription`, its offsets too. Empty on a
    /// single node, and where this node replicates every partition.
    pub(super) async fn remote_views(
        &self,
        topic: &Topic,
        subscription: Option<&str>,
        which: impl Fn(u32) -> bool,
    ) -> Result<HashMap<u32, PartitionView>> {
        let asked = topic.partitions.iter().filter(|p| which(p.shared().index));
        let views = asked.map(|partition| async move {
            match partition.remote_view(subscription).await {
                None => Ok(None),
                Some(Ok(view)) => Ok(Some((partition.shared().index, view))),
                Some(Err(err)) => Err(partition.hinted(err, topic.name())),
            }
        });
        let views = futures::future::try_join_all(views).await?;
        Ok(views.into_iter().flatten().collect())
    }

    /// Resolves once this node applied everything the groups of `topic`'s replicated
    /// partitions committed before the call ([`Partition::read_barrier`](super::partition::Partition::read_barrier)), all at once: then
    /// its cursors and queue floors are the groups'. At once on a single node.
    pub(super) async fn caught_up(&self, topic: &Topic) -> Result<()> {
        let barriers = topic.partitions.iter().map(|partition| async move {
            partition
                .read_barrier()
                .await
                .map_err(|err| partition.hinted(err, topic.name()))
        });
        futures::future::try_join_all(barriers).await.map(drop)
    }

    /// The mode of a subscription about to be consumed (REST polls and live sessions, which
    /// consume in the subscription's own mode): needs `Consume` on it, not `Describe`.
    pub fn consume_mode(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
    ) -> Result<SubscriptionMode> {
        self.authorize(
            principal,
            Action::Consume,
            Resource::Subscription { topic, name },
        )?;
        let live = self.topic(principal, topic)?;
        Ok(self.subscription(&live, name)?.record.mode)
    }

    /// Moves a subscription's committed offsets; live members resume from there.
    pub async fn seek_subscription(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
        position: StartPosition,
        partition: Option<u32>,
    ) -> Result<SubscriptionStatus> {
        self.authorize(
            principal,
            Action::Alter,
            Resource::Subscription { topic, name },
        )?;
        let live = self.topic(principal, topic)?;
        let sub = self.subscription(&live, name)?;
        if let Some(p) = partition
            && live.partition(p).is_none()
        {
            return Err(Error::new(
                ErrorCode::PartitionNotFound,
                format!("topic `{topic}` has no partition {p}"),
            ));
        }
        let offsets: Vec<(u32, u64)> = self
            .resolve_start(&live, position)
            .await?
            .into_iter()
            .enumerate()
            .map(|(p, o)| (p as u32, o))
            .filter(|(p, _)| partition.is_none_or(|only| only == *p))
            .collect();
        let moved: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        let audit = Audit::new(
            principal,
            "subscription.seek",
            format!("subscription:{topic}/{name}"),
        )
        .detail(format!("partition:offset {}", moved.join(",")));
        self.move_cursor(principal, topic, name, &offsets, None, Some(audit))
            .await?;
        sub.reset_members();
        let remote = self.remote_views(&live, Some(name), |_| true).await?;
        Ok(subscription_status_with(&live, &sub, &remote))
    }

    pub async fn delete_subscription(
        &self,
        principal: &Principal,
        topic: &str,
        name: &str,
    ) -> Result<()> {
        self.authorize(
            principal,
            Action::Delete,
            Resource::Subscription { topic, name },
        )?;
        let live = self.topic(principal, topic)?;
        let _guard = self.meta_lock.lock().await;
        let _flushes = self.queue_state_lock.lock().await;
        self.subscription(&live, name)?;
        let audit = Audit::new(
            principal,
            "subscription.delete",
            format!("subscription:{topic}/{name}"),
        );
        let command = MetaCommand::DeleteSubscription {
            topic_id: live.id(),
            name: name.to_string(),
        };
        self.apply_audited(command, audit).await?;
        tracing::info!(topic, subscription = name, "subscription deleted");
        Ok(())
    }
}

pub(super) fn subscription_status(topic: &Topic, sub: &Subscription) -> SubscriptionStatus {
    subscription_status_with(topic, sub, &HashMap::new())
}

/// [`subscription_status`] with the partitions this node holds no replica of as `remote` has
/// them (their groups' leaders, [`Engine::remote_views`]).
fn subscription_status_with(
    topic: &Topic,
    sub: &Subscription,
    remote: &HashMap<u32, PartitionView>,
) -> SubscriptionStatus {
    let cursors = topic
        .partitions
        .iter()
        .map(|p| {
            let s = p.shared();
            let local = || sub.committed_or_floor(s.index);
            let (committed, hw, log_start) = match remote.get(&s.index) {
                Some(view) => (
                    view.committed.unwrap_or_else(local),
                    view.high_watermark,
                    view.log_start,
                ),
                None => (local(), s.high_watermark(), s.log_start()),
            };
            (
                s.index,
                committed,
                hw,
                hw.saturating_sub(committed.max(log_start)),
            )
        })
        .collect();
    SubscriptionStatus {
        topic: topic.name().to_string(),
        name: sub.name().to_string(),
        mode: sub.record.mode,
        queue: sub.queue.as_ref().map(|q| {
            let (in_flight, counters) = q.counters();
            (q.settings.clone(), in_flight, counters)
        }),
        cursors,
        members: sub.members(),
        created_at_ms: sub.record.created_at_ms,
    }
}

/// The partition whose group's leader coordinates stream subscription `name` of `topic`:
/// spread over the partitions by the name's hash, as a key is. `None` when the topic's
/// partitions are not replicated.
pub(super) fn coordinator_partition(topic: &Topic, name: &str) -> Option<u32> {
    if !topic.partitions.iter().any(Partition::replicated) {
        return None;
    }
    let n = u32::try_from(topic.partitions.len()).ok()?;
    Some(rapidmq_proto::partition_for_key(name.as_bytes(), n))
}
