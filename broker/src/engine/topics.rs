//! Topic administration: create (with the tenant's count quotas), alter, list, describe and
//! delete, each one metadata command through [`Engine::apply_audited`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use super::command::MetaCommand;
use super::topic::{StorageKind, Topic, TopicRecord, TopicSettings, TopicSpec, TopicStatus};
use super::{Engine, TopicState};
use crate::audit::Audit;
use crate::auth::{Action, Resource};
use crate::error::{Error, Result, check_name};
use crate::principal::Principal;
use rapidmq_proto::ErrorCode;

impl Engine {
    pub async fn create_topic(
        &self,
        principal: &Principal,
        name: &str,
        spec: TopicSpec,
    ) -> Result<TopicStatus> {
        self.authorize(principal, Action::Create, Resource::Topic(name))?;
        check_name("topic", name)?;
        let replication_factor = self.check_replication_factor(spec.replication_factor)?;
        let settings = self.resolve_settings(spec)?;
        let _guard = self.meta_lock.lock().await;
        let key = (principal.tenant().clone(), name.to_string());
        if self.topics.read().contains_key(&key) {
            return Err(Error::new(
                ErrorCode::TopicAlreadyExists,
                format!("topic `{name}` already exists"),
            ));
        }
        self.check_topic_quota(principal.tenant(), settings.partitions)?;
        let record = TopicRecord {
            // A cluster's metadata group gives the id at apply (`replicated/`).
            id: if self.replicated() {
                0
            } else {
                self.next_topic_id.fetch_add(1, Ordering::Relaxed)
            },
            tenant: principal.tenant().to_string(),
            name: name.to_string(),
            settings,
            created_at_ms: self.clock.now_ms(),
            replication_factor,
            replicas: Vec::new(),
        };
        let audit = Audit::new(principal, "topic.create", format!("topic:{name}"))
            .detail(format!("{} partitions", record.settings.partitions));
        self.apply_audited(MetaCommand::CreateTopic(record), audit)
            .await?;
        let topic = self
            .topic(principal, name)
            .map_err(|_| Error::internal("a created topic is not live"))?;
        let status = TopicStatus::from(&*topic);
        tracing::info!(
            topic = name,
            partitions = status.partitions.len(),
            "topic created"
        );
        Ok(status)
    }

    fn resolve_settings(&self, spec: TopicSpec) -> Result<TopicSettings> {
        let d = &self.config.topic_defaults;
        let limits = &self.config.limits;
        let partitions = spec.partitions.unwrap_or(d.partitions);
        if partitions == 0 || partitions > limits.max_partitions {
            return Err(Error::new(
                ErrorCode::InvalidPartitionCount,
                format!(
                    "a topic has 1 to {} partitions, not {partitions}",
                    limits.max_partitions
                ),
            ));
        }
        let max_message_bytes = spec.max_message_bytes.unwrap_or(d.max_message_bytes);
        if max_message_bytes == 0 || max_message_bytes > limits.max_message_bytes {
            return Err(Error::new(
                ErrorCode::InvalidTopicConfig,
                format!(
                    "max_message_bytes must be between 1 and {}, not {max_message_bytes}",
                    limits.max_message_bytes
                ),
            ));
        }
        Ok(TopicSettings {
            partitions,
            retention_ms: spec.retention_ms.unwrap_or(d.retention_ms),
            retention_bytes: spec.retention_bytes.unwrap_or(d.retention_bytes),
            retention_messages: spec.retention_messages.unwrap_or(d.retention_messages),
            max_message_bytes,
            storage: spec.storage.unwrap_or_default(),
            durability: spec.durability.unwrap_or_default(),
            dedup_window_ms: spec.dedup_window_ms.unwrap_or(0),
        })
    }

    /// Changes a topic's retention, max message size, durability or dedup window. The partition
    /// count and the storage kind cannot change.
    pub async fn alter_topic(
        &self,
        principal: &Principal,
        name: &str,
        spec: TopicSpec,
    ) -> Result<TopicStatus> {
        self.authorize(principal, Action::Alter, Resource::Topic(name))?;
        let _guard = self.meta_lock.lock().await;
        let topic = self.topic(principal, name)?;
        let current = topic.settings();
        if spec.partitions.is_some_and(|p| p != current.partitions) {
            return Err(Error::new(
                ErrorCode::InvalidPartitionCount,
                format!(
                    "topic `{name}` keeps its {} partitions: the partition count cannot be altered",
                    current.partitions
                ),
            ));
        }
        let placed = topic.record.replication_factor;
        if spec
            .replication_factor
            .is_some_and(|rf| rf != placed.unwrap_or(1))
        {
            return Err(Error::new(
                ErrorCode::InvalidTopicConfig,
                "the replication factor of a topic cannot be altered",
            ));
        }
        if spec.storage.is_some_and(|s| s != current.storage) {
            return Err(Error::new(
                ErrorCode::InvalidTopicConfig,
                "the storage of a topic cannot be altered",
            ));
        }
        if spec.durability.is_some() && current.storage == StorageKind::Memory {
            return Err(Error::new(
                ErrorCode::InvalidTopicConfig,
                "a memory topic has no durability setting",
            ));
        }
        let limits = &self.config.limits;
        let max_message_bytes = spec.max_message_bytes.unwrap_or(current.max_message_bytes);
        if max_message_bytes == 0 || max_message_bytes > limits.max_message_bytes {
            return Err(Error::new(
                ErrorCode::InvalidTopicConfig,
                format!(
                    "max_message_bytes must be between 1 and {}, not {max_message_bytes}",
                    limits.max_message_bytes
                ),
            ));
        }
        let settings = TopicSettings {
            retention_ms: spec.retention_ms.unwrap_or(current.retention_ms),
            retention_bytes: spec.retention_bytes.unwrap_or(current.retention_bytes),
            retention_messages: spec
                .retention_messages
                .unwrap_or(current.retention_messages),
            max_message_bytes,
            durability: spec.durability.unwrap_or(current.durability),
            dedup_window_ms: spec.dedup_window_ms.unwrap_or(current.dedup_window_ms),
            ..current
        };
        let record = TopicRecord {
            settings: settings.clone(),
            ..topic.record.clone()
        };
        let audit = Audit::new(principal, "topic.alter", format!("topic:{name}"));
        self.apply_audited(MetaCommand::AlterTopic(record), audit)
            .await?;
        tracing::info!(topic = name, "topic altered");
        Ok(TopicStatus::from(&*topic))
    }

    /// The topics of the caller's tenant that it may describe (never refused, but for
    /// anonymous callers while auth is on).
    pub fn list_topics(&self, principal: &Principal) -> Result<Vec<TopicStatus>> {
        let topics = self.visible_topics(principal)?;
        Ok(topics
            .iter()
            .map(|topic| TopicStatus::from(&**topic))
            .collect())
    }

    /// [`Engine::list_topics`] with each topic as [`Engine::describe_topic`] has it: in cluster
    /// mode the partitions this node holds no replica of carry their groups' figures, asked of
    /// their leaders (a few topics at a time). A partition whose leader cannot be asked keeps
    /// this node's figures (0), so one unreachable leader does not fail the listing.
    pub async fn list_topics_described(&self, principal: &Principal) -> Result<Vec<TopicStatus>> {
        /// Topics whose remote figures are asked at once.
        const TOPICS_AT_ONCE: usize = 16;
        let topics = self.visible_topics(principal)?;
        let described = futures::stream::iter(topics)
            .map(|topic| async move {
                self.with_group_figures(&topic).await.unwrap_or_else(|err| {
                    tracing::debug!(topic = %topic.name(), cause = %err, "listing a topic with this node's figures");
                    TopicStatus::from(&*topic)
                })
            })
            .buffered(TOPICS_AT_ONCE)
            .collect()
            .await;
        Ok(described)
    }

    /// The topics of the caller's tenant that it may describe, by name.
    fn visible_topics(&self, principal: &Principal) -> Result<Vec<Arc<Topic>>> {
        self.authenticated(principal)?;
        let mut topics: Vec<Arc<Topic>> = self
            .topics
            .read()
            .iter()
            .filter(|((tenant, name), _)| {
                tenant == principal.tenant() && self.visible(principal, Resource::Topic(name))
            })
            .map(|(_, live)| Arc::clone(&live.topic))
            .collect();
        topics.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(topics)
    }

    /// A topic as the admin API describes it. In cluster mode the partitions this node holds
    /// no replica of are described as their groups' leaders have them (log start, high
    /// watermark, bytes): this node has none of their data.
    pub async fn describe_topic(&self, principal: &Principal, name: &str) -> Result<TopicStatus> {
        self.authorize(principal, Action::Describe, Resource::Topic(name))?;
        let topic = self.topic(principal, name)?;
        self.with_group_figures(&topic).await
    }

    /// `topic`'s status with the partitions this node holds no replica of as their groups'
    /// leaders have them.
    async fn with_group_figures(&self, topic: &Topic) -> Result<TopicStatus> {
        let remote = self.remote_views(topic, None, |_| true).await?;
        Ok(TopicStatus::from(topic).with_remote(&remote))
    }

    /// [`Engine::describe_topic`] from this node's own state alone, asking no other node: the
    /// placement and the leaders it knows are what `GetMetadata` answers.
    pub fn topic_status_here(&self, principal: &Principal, name: &str) -> Result<TopicStatus> {
        self.authorize(principal, Action::Describe, Resource::Topic(name))?;
        Ok(TopicStatus::from(&*self.topic(principal, name)?))
    }

    /// Deletes a topic and everything of it. The topic is first fenced: its writers finish
    /// what they had queued and stop, so nothing lands after the delete. If the delete then
    /// cannot be written, the topic is reopened whole and the error returned.
    pub async fn delete_topic(&self, principal: &Principal, name: &str) -> Result<()> {
        self.authorize(principal, Action::Delete, Resource::Topic(name))?;
        check_name("topic", name)?;
        let _guard = self.meta_lock.lock().await;
        let _flushes = self.queue_state_lock.lock().await;
        let topic = self.topic(principal, name)?;
        for partition in &topic.partitions {
            partition.close().await;
        }
        let record = topic.record.clone();
        let deleted = async {
            let scheduled = self.scheduled_keys(record.id).await?;
            let audit = Audit::new(principal, "topic.delete", format!("topic:{name}"));
            self.apply_audited(MetaCommand::DeleteTopic { record, scheduled }, audit)
                .await
        };
        if let Err(err) = deleted.await {
            if self.topic_by_id(topic.id()).is_none() {
                // Deleted all the same (in a cluster, by a delete through another node).
                return Err(err);
            }
            self.reopen_fenced(&topic)?;
            tracing::warn!(topic = name, cause = %err, "topic delete failed; the topic is reopened");
            return Err(err);
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Brings back a topic fenced for a delete that failed: its partitions reopen from the
    /// store, its subscriptions (with their cursors and queue state) move to the new live
    /// topic, and sessions of the old one end so their consumers subscribe again.
    pub(super) fn reopen_fenced(&self, fenced: &Arc<Topic>) -> Result<()> {
        let record = TopicRecord {
            settings: fenced.settings(),
            ..fenced.record.clone()
        };
        let topic = self.open_topic(record)?;
        *topic.subscriptions.write() = std::mem::take(&mut *fenced.subscriptions.write());
        if let Some(old) = self.insert_topic(topic) {
            old.closed.send_replace(TopicState::Reopened);
        }
        Ok(())
    }
}
