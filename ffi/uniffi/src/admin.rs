//! `NativeAdmin`: topics, subscriptions (queue settings and stats), lag, dead letters, status
//! (the caller, users and API tokens are in `users.rs`).

use rapidmq_core::{self as core, Runtime};

use crate::error::Result;
use crate::runtime::on_runtime;
use crate::types::{
    BrokerStatus, DeadLetterPage, DeadLetterReplay, QueueSettings, StartAt, SubscriptionInfo,
    TopicConfig, TopicInfo,
};

/// Admin operations of a client.
#[derive(uniffi::Object)]
pub struct NativeAdmin {
    pub(crate) core: core::Admin,
    pub(crate) runtime: Runtime,
}

impl NativeAdmin {
    pub(crate) fn new(core: core::Admin, runtime: Runtime) -> NativeAdmin {
        NativeAdmin { core, runtime }
    }
}

#[uniffi::export]
impl NativeAdmin {
    /// Creates a topic.
    pub async fn create_topic(&self, name: String, config: TopicConfig) -> Result<TopicInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .create_topic(name, config.into())
                .await
                .map(Into::into)
        })
        .await
    }

    /// Every topic.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let topics = admin.list_topics().await?;
            Ok(topics.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// One topic with its partitions.
    pub async fn describe_topic(&self, name: String) -> Result<TopicInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.describe_topic(name).await.map(Into::into)
        })
        .await
    }

    /// Changes a topic's settings; unset fields keep their value.
    pub async fn alter_topic(&self, name: String, config: TopicConfig) -> Result<TopicInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.alter_topic(name, config.into()).await.map(Into::into)
        })
        .await
    }

    /// Deletes a topic and its subscriptions.
    pub async fn delete_topic(&self, name: String) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move { admin.delete_topic(name).await }).await
    }

    /// Creates a stream subscription.
    pub async fn create_subscription(
        &self,
        topic: String,
        name: String,
        start: StartAt,
    ) -> Result<SubscriptionInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .create_subscription(topic, name, start.into())
                .await
                .map(Into::into)
        })
        .await
    }

    /// Creates a queue subscription.
    pub async fn create_queue_subscription(
        &self,
        topic: String,
        name: String,
        start: StartAt,
        settings: QueueSettings,
    ) -> Result<SubscriptionInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .create_queue_subscription(topic, name, start.into(), settings.into())
                .await
                .map(Into::into)
        })
        .await
    }

    /// Subscriptions of `topic`, or of every topic.
    pub async fn list_subscriptions(&self, topic: Option<String>) -> Result<Vec<SubscriptionInfo>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let subs = admin.list_subscriptions(topic).await?;
            Ok(subs.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// One subscription with its cursors, members and lag.
    pub async fn describe_subscription(
        &self,
        topic: String,
        name: String,
    ) -> Result<SubscriptionInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .describe_subscription(topic, name)
                .await
                .map(Into::into)
        })
        .await
    }

    /// The total lag of a subscription.
    pub async fn lag(&self, topic: String, name: String) -> Result<u64> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move { admin.lag(topic, name).await }).await
    }

    /// Moves a subscription's cursor (one partition, or all).
    pub async fn seek_subscription(
        &self,
        topic: String,
        name: String,
        position: StartAt,
        partition: Option<u32>,
    ) -> Result<SubscriptionInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .seek_subscription(topic, name, position.into(), partition)
                .await
                .map(Into::into)
        })
        .await
    }

    /// Deletes a subscription.
    pub async fn delete_subscription(&self, topic: String, name: String) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.delete_subscription(topic, name).await
        })
        .await
    }

    /// One page of the dead letters not yet replayed: at most `max` (0: the broker default,
    /// 100; at most 1000), from `page_token` (the previous page's `next_page_token`) or the
    /// start.
    pub async fn list_dead_letters(
        &self,
        dead_letter_topic: String,
        max: u32,
        page_token: Option<String>,
    ) -> Result<DeadLetterPage> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .list_dead_letters(dead_letter_topic, max, page_token.as_deref())
                .await
                .map(Into::into)
        })
        .await
    }

    /// Publishes up to `max` dead letters (the broker default, 1000, when `None`; at most
    /// 10000) back to their topics; says how many and how many are still pending.
    pub async fn replay_dead_letters(
        &self,
        dead_letter_topic: String,
        max: Option<u32>,
    ) -> Result<DeadLetterReplay> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .replay_dead_letters(dead_letter_topic, max)
                .await
                .map(Into::into)
        })
        .await
    }

    /// Broker version, uptime and counts.
    pub async fn status(&self) -> Result<BrokerStatus> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.status().await.map(Into::into)
        })
        .await
    }
}
