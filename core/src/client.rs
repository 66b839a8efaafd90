//! The client: endpoints, the shared connection, and the low-level calls the producer, consumer
//! and admin build on.
//!
//! One HTTP/2 connection (a tonic `Channel`) is shared by everything a client does. When a call
//! fails with a connection error, the connection is dropped and the next call reconnects, trying
//! the endpoints in order starting with the one after the failed one. Endpoints can be replaced
//! at runtime ([`Client::set_endpoints`]), e.g. when a broker comes back on a new address.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use rapidmq_proto::v1;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::admin::Admin;
use crate::auth::{self, Bearer, Conn};
use crate::config::{
    ClientConfig, ConsumerConfig, Credentials, ProducerConfig, RetryPolicy, TlsConfig,
};
use crate::consumer::{Consumer, QueueConsumer};
use crate::convert;
use crate::error::{Error, Result};
use crate::producer::Producer;
use crate::request::Requests;
use crate::retry;
use crate::routing::Routes;
use crate::runtime::Runtime;
use crate::types::{Compression, Message, PublishAck, ReceivedMessage};

/// A connection to a RapidMQ broker. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    runtime: Runtime,
    config: ClientConfig,
    endpoints: RwLock<Vec<String>>,
    next_endpoint: AtomicUsize,
    /// The current connection and its generation; a failure resets only the generation it saw.
    channel: Mutex<Option<(u64, Channel)>>,
    generation: AtomicU64,
    connect_lock: tokio::sync::Mutex<()>,
    /// Producers and consumers made from this client, closed by [`Client::close`].
    children: Mutex<Vec<Weak<dyn Closable>>>,
    /// Set when [`Client::close`] starts: no new producers or consumers.
    closing: AtomicBool,
    /// Set once the children are closed: every call fails with [`Error::Closed`].
    closed: AtomicBool,
    /// The outcome of the one close, shared by every caller.
    close_result: tokio::sync::OnceCell<Result<()>>,
    /// The token every request carries (an API token, or the session of a login).
    bearer: Bearer,
    /// Held while logging in again after an expired session, so that concurrent calls that saw
    /// the same expiry log in once.
    relogin: tokio::sync::Mutex<()>,
    /// Where partitions are led, and a connection per node (client routing).
    routes: Routes,
    /// The inbox and producers of request/reply.
    requests: Requests,
}

/// A producer or consumer that [`Client::close`] closes.
pub(crate) trait Closable: Send + Sync {
    /// Closes it (flushing or committing first); a no-op when already closed.
    fn close(self: Arc<Self>) -> BoxFuture<'static, Result<()>>;
    /// Producers close before consumers, so messages in flight to a topic this client also
    /// consumes are acknowledged first.
    fn is_producer(&self) -> bool;
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &*self.inner.endpoints.read())
            .finish()
    }
}

/// Messages read by [`Client::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// The messages, in offset order.
    pub messages: Vec<ReceivedMessage>,
    /// The partition's next offset to be written.
    pub high_watermark: u64,
    /// The partition's oldest retained offset.
    pub log_start_offset: u64,
}

impl Client {
    /// Validates `config` and connects to the first reachable endpoint. With credentials the
    /// client authenticates at connect: a token is checked with `WhoAmI`, a user and password
    /// log in (and log in again at 80 % of the session's life).
    ///
    /// Errors: [`Error::InvalidArgument`] for a bad configuration, [`Error::TlsHandshake`] for a
    /// failed TLS handshake (an unknown issuer, a wrong server name, a refused client
    /// certificate, a plaintext broker), [`Error::Unavailable`] when no endpoint answers,
    /// `UNAUTHENTICATED` for credentials the broker refuses (not retried).
    pub async fn connect(runtime: Runtime, config: ClientConfig) -> Result<Client> {
        config.validate()?;
        Client::open(runtime, config).await
    }

    async fn open(runtime: Runtime, config: ClientConfig) -> Result<Client> {
        let bearer = Bearer::in_tenant(config.tenant.as_deref())?;
        let client = Client {
            inner: Arc::new(ClientInner {
                runtime: runtime.clone(),
                endpoints: RwLock::new(config.endpoints.clone()),
                config,
                next_endpoint: AtomicUsize::new(0),
                channel: Mutex::new(None),
                generation: AtomicU64::new(0),
                connect_lock: tokio::sync::Mutex::new(()),
                children: Mutex::new(Vec::new()),
                closing: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                close_result: tokio::sync::OnceCell::new(),
                bearer,
                relogin: tokio::sync::Mutex::new(()),
                routes: Routes::default(),
                requests: Requests::default(),
            }),
        };
        let probe = client.clone();
        runtime
            .run(async move { probe.channel().await.map(|_| ()) })
            .await??;
        let authenticate = client.clone();
        runtime
            .run(async move { authenticate.authenticate().await })
            .await??;
        Ok(client)
    }

    /// Puts the configured credentials in the token slot (logging in for a user and password)
    /// and checks them with `WhoAmI`; without credentials, does nothing.
    async fn authenticate(&self) -> Result<()> {
        match self.inner.config.credentials.clone() {
            None => return Ok(()),
            Some(Credentials::Token(token)) => self.inner.bearer.set(&token)?,
            Some(Credentials::UserPassword { user, password }) => {
                let expires_at_ms = self.login(&user, &password).await?;
                self.spawn_session_renewal(user, password, expires_at_ms);
            }
        }
        self.whoami().await.map(|_| ())
    }

    /// Logs in and puts the session token in the slot; returns when the session expires.
    async fn login(&self, user: &str, password: &str) -> Result<u64> {
        let request = v1::LoginRequest {
            user: user.to_string(),
            password: password.to_string(),
        };
        let login = move |ch| {
            let request = request.clone();
            async move { v1::auth_client::AuthClient::new(ch).login(request).await }
        };
        let session = self.unary_once(&login).await.0?;
        self.inner.bearer.set(&session.token)?;
        Ok(session.expires_at_ms)
    }

    /// Logs in again at 80 % of each session's life, until the client is closed or dropped. A
    /// failed renewal is retried (at least a second later) while the old session lasts.
    fn spawn_session_renewal(&self, user: String, password: String, mut expires_at_ms: u64) {
        let weak = Arc::downgrade(&self.inner);
        self.inner.runtime.spawn(async move {
            loop {
                tokio::time::sleep(auth::refresh_delay(auth::now_ms(), expires_at_ms)).await;
                let Some(inner) = weak.upgrade() else { return };
                let client = Client { inner };
                if client.inner.closing.load(Ordering::SeqCst) {
                    return;
                }
                match client.login(&user, &password).await {
                    Ok(expires) => expires_at_ms = expires,
                    Err(err) => {
                        tracing::warn!(cause = %err, "renewing the session failed; retrying")
                    }
                }
            }
        });
    }

    /// The caller as the broker sees it: `(tenant, user)`, the user empty when anonymous.
    pub async fn whoami(&self) -> Result<(String, String)> {
        let client = self.clone();
        self.runtime()
            .run(async move {
                client
                    .unary_with_retries(|ch| async move {
                        v1::auth_client::AuthClient::new(ch)
                            .who_am_i(v1::WhoAmIRequest {})
                            .await
                    })
                    .await
                    .map(|me| (me.tenant, me.user))
            })
            .await?
    }

    /// The runtime this client spawns on.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The endpoints currently in use.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints.read().clone()
    }

    /// Replaces the endpoints; the current connection is dropped and the next call connects to
    /// the new list. Producers and consumers of this client follow.
    pub fn set_endpoints(&self, endpoints: Vec<String>) -> Result<()> {
        ClientConfig {
            endpoints: endpoints.clone(),
            ..self.inner.config.clone()
        }
        .validate()?;
        *self.inner.endpoints.write() = endpoints;
        self.inner.next_endpoint.store(0, Ordering::Relaxed);
        *self.inner.channel.lock() = None;
        Ok(())
    }

    /// Closes every producer (flushing what is buffered) and then every consumer (sending final
    /// commits and acks) created from this client, then drops the connection. Idempotent:
    /// concurrent and later calls wait for the same close and return its result. Dropping the
    /// returned future does not stop the close.
    ///
    /// Afterwards every operation of this client, and of its producers and consumers, fails with
    /// [`Error::Closed`].
    ///
    /// Errors: the first error a producer or consumer reported while closing (all are closed
    /// regardless).
    pub async fn close(&self) -> Result<()> {
        let client = self.clone();
        self.runtime()
            .run(async move {
                let inner = client.inner.clone();
                inner
                    .close_result
                    .get_or_init(|| client.close_children())
                    .await
                    .clone()
            })
            .await?
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    async fn close_children(&self) -> Result<()> {
        self.inner.closing.store(true, Ordering::SeqCst);
        let children: Vec<Arc<dyn Closable>> = std::mem::take(&mut *self.inner.children.lock())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let (producers, consumers): (Vec<_>, Vec<_>) =
            children.into_iter().partition(|c| c.is_producer());
        let mut first_error = None;
        for group in [producers, consumers] {
            let results = futures::future::join_all(group.into_iter().map(|c| c.close())).await;
            for result in results {
                if let Err(err) = result {
                    tracing::debug!(cause = %err, "closing a producer or consumer failed");
                    first_error.get_or_insert(err);
                }
            }
        }
        self.delete_inbox().await;
        self.inner.closed.store(true, Ordering::SeqCst);
        *self.inner.channel.lock() = None;
        tracing::debug!("client closed");
        first_error.map_or(Ok(()), Err)
    }

    /// Fails with [`Error::Closed`] once [`Client::close`] has started.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(closed_error());
        }
        Ok(())
    }

    /// Registers a producer or consumer for [`Client::close`]. Fails (and the caller must close
    /// `child`) when the client is closing already.
    pub(crate) fn register(&self, child: Weak<dyn Closable>) -> Result<()> {
        let mut children = self.inner.children.lock();
        // Checked under the lock `close_children` takes the list with, so no child is missed.
        self.check_open()?;
        children.retain(|c| c.strong_count() > 0);
        children.push(child);
        Ok(())
    }

    /// The admin API.
    pub fn admin(&self) -> Admin {
        Admin::new(self.clone())
    }

    /// Creates a producer for `config.topic`; looks the topic up first.
    ///
    /// Errors: `TOPIC_NOT_FOUND` when the topic does not exist; [`Error::InvalidArgument`] for a
    /// bad configuration.
    pub async fn create_producer(&self, config: ProducerConfig) -> Result<Producer> {
        self.check_open()?;
        Producer::create(self.clone(), config).await
    }

    /// Subscribes to `config.topic` (stream mode) and returns once the broker confirmed the
    /// subscription.
    ///
    /// Errors: `TOPIC_NOT_FOUND`, `SUBSCRIPTION_MODE_MISMATCH`, [`Error::InvalidArgument`].
    pub async fn subscribe(&self, config: ConsumerConfig) -> Result<Consumer> {
        self.check_open()?;
        Consumer::subscribe(self.clone(), config).await
    }

    /// Subscribes to `config.topic` in queue mode (creating the subscription with
    /// `config.queue` if it does not exist) and returns once the broker confirmed it.
    ///
    /// Errors: `TOPIC_NOT_FOUND`, `SUBSCRIPTION_MODE_MISMATCH` (a stream subscription of that
    /// name exists), `INVALID_ARGUMENT` (e.g. `max_deliveries` of 0, or no subscription name).
    pub async fn subscribe_queue(&self, config: ConsumerConfig) -> Result<QueueConsumer> {
        self.check_open()?;
        QueueConsumer::subscribe(self.clone(), config).await
    }

    /// Publishes one batch to one partition in a single attempt: no batching, no retries. The
    /// producer is built on the same call; this is the raw path for tools, benchmarks and tests.
    /// `producer_id` 0 disables idempotence.
    pub async fn publish_batch(
        &self,
        topic: impl Into<String>,
        partition: u32,
        producer_id: u64,
        base_sequence: u64,
        messages: Vec<Message>,
    ) -> Result<PublishAck> {
        for m in &messages {
            convert::check_timestamp(m)?;
        }
        let now = now_ms();
        let batch = convert::encode_batch(
            messages.into_iter().map(|m| {
                let ts = m.timestamp_ms.unwrap_or(now);
                (m, ts)
            }),
            Compression::None,
        );
        let request = v1::PublishRequest {
            topic: topic.into(),
            partition,
            producer_id,
            base_sequence,
            batch,
        };
        let client = self.clone();
        self.runtime()
            .run(async move { client.publish_once(request).await.map(PublishAck::from) })
            .await?
    }

    /// Reads up to `max_messages` from `partition` starting at `offset`, waiting up to `max_wait`
    /// for data when there is none yet. Retries retriable failures.
    pub async fn fetch(
        &self,
        topic: impl Into<String>,
        partition: u32,
        offset: u64,
        max_messages: u32,
        max_wait: Duration,
    ) -> Result<FetchResult> {
        let topic = topic.into();
        let client = self.clone();
        let request = v1::FetchRequest {
            topic: topic.clone(),
            partition,
            offset,
            max_messages,
            max_wait_ms: u32::try_from(max_wait.as_millis()).unwrap_or(u32::MAX),
        };
        self.runtime()
            .run(async move {
                let response = client
                    .unary_with_retries(move |ch| {
                        let request = request.clone();
                        async move { messaging_client(ch).fetch(request).await }
                    })
                    .await?;
                let mut messages = Vec::new();
                for batch in response.batches {
                    messages.extend(convert::decode_delivery(&topic, batch)?);
                }
                messages.retain(|m| m.offset >= offset);
                Ok(FetchResult {
                    messages,
                    high_watermark: response.high_watermark,
                    log_start_offset: response.log_start_offset,
                })
            })
            .await?
    }

    /// One publish attempt (runs on the core runtime).
    pub(crate) async fn publish_once(
        &self,
        request: v1::PublishRequest,
    ) -> Result<v1::PublishResponse> {
        self.unary(move |ch| {
            let request = request.clone();
            async move { messaging_client(ch).publish(request).await }
        })
        .await
    }

    /// Request/reply's inbox and producers.
    pub(crate) fn requests(&self) -> &Requests {
        &self.inner.requests
    }

    /// Where partitions are led, as this client knows it.
    pub(crate) fn routes(&self) -> &Routes {
        &self.inner.routes
    }

    /// Asks the seed connection where `topic`'s partitions are led (runs on the core runtime).
    /// A broker that cannot say (an older one, without `GetMetadata`) leaves the topic on the
    /// seed connection; so does any other failure, until an answer marks the topic stale again.
    pub(crate) async fn refresh_routes(&self, topic: &str) {
        let request = v1::GetMetadataRequest {
            topics: vec![topic.to_string()],
        };
        let answer = self
            .unary(move |ch| {
                let request = request.clone();
                async move { messaging_client(ch).get_metadata(request).await }
            })
            .await;
        let metadata = answer.unwrap_or_else(|err| {
            tracing::debug!(topic, cause = %err, "no metadata; using the seed connection");
            v1::GetMetadataResponse {
                nodes: Vec::new(),
                topics: vec![v1::TopicMetadata {
                    name: topic.to_string(),
                    partitions: Vec::new(),
                }],
            }
        });
        self.inner.routes.learn(&metadata);
    }

    /// A messaging client on node `node`'s connection (`addr` is its client gRPC address),
    /// connecting first if there is none; same TLS and credentials as the seed connection.
    pub(crate) async fn node_messaging(
        &self,
        node: u64,
        addr: &str,
    ) -> Result<MessagingClient<Conn>> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(closed_error());
        }
        let channel = match self.inner.routes.channel(node) {
            Some(channel) => channel,
            None => {
                let tls = self
                    .endpoints()
                    .first()
                    .is_some_and(|e| e.starts_with("https://"));
                let scheme = if tls { "https" } else { "http" };
                let channel = self.connect_to(&format!("{scheme}://{addr}")).await?;
                self.inner.routes.keep_channel(node, channel)
            }
        };
        Ok(messaging_client(self.conn(channel)))
    }

    /// A messaging client on the current connection, with its generation.
    pub(crate) async fn messaging(&self) -> Result<(u64, MessagingClient<Conn>)> {
        let (generation, channel) = self.channel().await?;
        Ok((generation, messaging_client(self.conn(channel))))
    }

    /// The connection with the client's token on every request.
    fn conn(&self, channel: Channel) -> Conn {
        Conn::new(channel, self.inner.bearer.clone())
    }

    /// One unary call with the request timeout; a connection failure resets the connection.
    ///
    /// When the broker says the session expired (`rapidmq-auth-reason: expired`), a client with
    /// a user and password logs in again and makes the call once more: the broker refused the
    /// first one before doing anything, so even a publish is safe to repeat.
    pub(crate) async fn unary<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let sent = self.inner.bearer.current();
        match self.unary_once(&call).await {
            (Err(err), true) if self.renew_expired_session(sent).await => {
                tracing::debug!(cause = %err, "session expired; logged in again, calling again");
                self.unary_once(&call).await.0
            }
            (result, _) => result,
        }
    }

    /// One attempt of [`Client::unary`]; also says whether the session had expired.
    async fn unary_once<T, F, Fut>(&self, call: &F) -> (Result<T>, bool)
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let (generation, channel) = match self.channel().await {
            Ok(current) => current,
            Err(err) => return (Err(err), false),
        };
        let timeout = self.inner.config.request_timeout;
        let mut expired = false;
        let result = match tokio::time::timeout(timeout, call(self.conn(channel))).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => {
                expired = auth::session_expired(&status);
                Err(Error::from(status))
            }
            Err(_) => Err(Error::Timeout {
                message: format!("no response within {timeout:?}"),
            }),
        };
        if let Err(err) = &result {
            self.on_failure(generation, err);
        }
        (result, expired)
    }

    /// The token the client sends on new calls and streams now; a stream keeps it to tell, when
    /// it ends, whether its session has been replaced since ([`Client::stream_ended`]).
    pub(crate) fn current_session(&self) -> Option<MetadataValue<Ascii>> {
        self.inner.bearer.current()
    }

    /// The error for a stream that the broker ended with `status`, after
    /// [`Client::on_failure`]. A stream lives on the session it was opened with, so it ends
    /// when that session expires even though the client renewed it meanwhile: when the broker
    /// says so (`rapidmq-auth-reason: expired`) and the client holds a newer session, or gets
    /// one by logging in again, the answer is a retriable `UNAVAILABLE`, and the consumer or
    /// producer reopens the stream on the new session instead of ending for good.
    pub(crate) async fn stream_ended(
        &self,
        generation: u64,
        status: tonic::Status,
        opened_with: Option<MetadataValue<Ascii>>,
    ) -> Error {
        self.stream_failed(status, opened_with, |err| self.on_failure(generation, err))
            .await
    }

    /// [`Client::stream_ended`] for a stream on node `node`'s own connection
    /// ([`Client::node_messaging`]): a connection failure drops that node's connection, not the
    /// seed's.
    pub(crate) async fn node_stream_ended(
        &self,
        node: u64,
        status: tonic::Status,
        opened_with: Option<MetadataValue<Ascii>>,
    ) -> Error {
        self.stream_failed(status, opened_with, |err| {
            if err.is_connection_failure() {
                self.inner.routes.node_failed(node);
            }
        })
        .await
    }

    /// The error for a stream ended with `status`, after `on_failure` has dropped whichever
    /// connection it broke; a retriable one when its expired session has been renewed.
    async fn stream_failed(
        &self,
        status: tonic::Status,
        opened_with: Option<MetadataValue<Ascii>>,
        on_failure: impl FnOnce(&Error),
    ) -> Error {
        let expired = auth::session_expired(&status);
        let err = Error::from(status);
        on_failure(&err);
        if expired && self.renew_expired_session(opened_with).await {
            tracing::debug!(cause = %err, "stream session expired; reopening on the new session");
            return Error::unavailable(
                "the stream's session expired; reopening it on a new session",
            );
        }
        err
    }

    /// Logs in again after the broker said that the session sent as `sent` has expired; true
    /// when a new session is in the slot. Only a client with a user and password can; calls
    /// that saw the same expiry at once log in once.
    async fn renew_expired_session(&self, sent: Option<MetadataValue<Ascii>>) -> bool {
        let Some(Credentials::UserPassword { user, password }) = &self.inner.config.credentials
        else {
            return false;
        };
        let _one = self.inner.relogin.lock().await;
        if self.inner.bearer.current() != sent {
            return true;
        }
        match self.login(user, password).await {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(cause = %err, "logging in again after the session expired failed");
                false
            }
        }
    }

    /// A unary call retried under the default retry policy; for idempotent calls only.
    pub(crate) async fn unary_with_retries<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        retry::with_retries(RetryPolicy::default(), |_| {}, || self.unary(&call)).await
    }

    /// Drops the connection of `generation` when `err` says it is broken.
    pub(crate) fn on_failure(&self, generation: u64, err: &Error) {
        if !err.is_connection_failure() {
            return;
        }
        let mut current = self.inner.channel.lock();
        if matches!(&*current, Some((g, _)) if *g == generation) {
            tracing::debug!(cause = %err, "dropping the broker connection");
            *current = None;
            self.inner.next_endpoint.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The current connection, connecting first if there is none.
    pub(crate) async fn channel(&self) -> Result<(u64, Channel)> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(closed_error());
        }
        if let Some(current) = self.inner.channel.lock().clone() {
            return Ok(current);
        }
        let _connecting = self.inner.connect_lock.lock().await;
        if let Some(current) = self.inner.channel.lock().clone() {
            return Ok(current);
        }
        let endpoints = self.endpoints();
        let start = self.inner.next_endpoint.load(Ordering::Relaxed);
        let mut last_error = Error::unavailable("no endpoints");
        for i in 0..endpoints.len() {
            let index = (start + i) % endpoints.len();
            match self.connect_to(&endpoints[index]).await {
                Ok(channel) => {
                    let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
                    self.inner.next_endpoint.store(index, Ordering::Relaxed);
                    *self.inner.channel.lock() = Some((generation, channel.clone()));
                    tracing::debug!(endpoint = %endpoints[index], "connected");
                    return Ok((generation, channel));
                }
                Err(err) => {
                    tracing::debug!(endpoint = %endpoints[index], cause = %err, "connect failed");
                    last_error = err;
                }
            }
        }
        Err(last_error)
    }

    async fn connect_to(&self, url: &str) -> Result<Channel> {
        let config = &self.inner.config;
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::invalid(format!("endpoint `{url}`: {e}")))?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10));
        if url.starts_with("https://") {
            // Files are read again at every (re)connect, so rotated certificates are used.
            let tls = client_tls_config(config.tls.as_ref().unwrap_or(&TlsConfig::default()))?;
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::invalid(format!("tls: {url}: {}", error_chain(&e))))?;
        }
        match tokio::time::timeout(config.connect_timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(err)) => Err(connect_error(url, &err)),
            Err(_) => Err(Error::unavailable(format!("{url}: connect timed out"))),
        }
    }
}

/// The tonic TLS settings for `tls`: its CA or else the system roots, its client identity, its
/// server name.
fn client_tls_config(tls: &TlsConfig) -> Result<ClientTlsConfig> {
    let mut out = ClientTlsConfig::new();
    match pem(&tls.ca_cert_path, &tls.ca_cert_pem, "CA certificate")? {
        Some(ca) => out = out.ca_certificate(Certificate::from_pem(ca)),
        None => out = out.with_native_roots(),
    }
    let cert = pem(
        &tls.client_cert_path,
        &tls.client_cert_pem,
        "client certificate",
    )?;
    let key = pem(&tls.client_key_path, &tls.client_key_pem, "client key")?;
    if let (Some(cert), Some(key)) = (cert, key) {
        out = out.identity(Identity::from_pem(cert, key));
    }
    if let Some(name) = &tls.server_name {
        out = out.domain_name(name.clone());
    }
    Ok(out)
}

/// A PEM given as a file or inline; an unreadable file is a configuration error.
fn pem(path: &Option<String>, inline: &Option<String>, what: &str) -> Result<Option<Vec<u8>>> {
    if let Some(inline) = inline {
        return Ok(Some(inline.as_bytes().to_vec()));
    }
    let Some(path) = path else { return Ok(None) };
    std::fs::read(path)
        .map(Some)
        .map_err(|e| Error::invalid(format!("tls: cannot read the {what} `{path}`: {e}")))
}

/// A failed connect: a TLS verdict cannot change by retrying, so it is the
/// [`crate::error::tls_failure`] error; anything else is [`Error::Unavailable`].
fn connect_error(url: &str, err: &(dyn std::error::Error + 'static)) -> Error {
    crate::error::tls_failure(url, err)
        .unwrap_or_else(|| Error::unavailable(format!("{url}: {}", error_chain(err))))
}

/// `err` and its causes, joined with `: `, skipping repeats.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn closed_error() -> Error {
    Error::closed("the client is closed")
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Responses are as large as the broker makes them: it bounds each one by its
/// `limits.max_request_bytes`, and a single message may be up to `limits.max_message_bytes`
/// (8 MiB by default), past tonic's default decoding limit of 4 MiB.
const MAX_RESPONSE_BYTES: usize = usize::MAX;

pub(crate) fn messaging_client(conn: Conn) -> MessagingClient<Conn> {
    MessagingClient::new(conn).max_decoding_message_size(MAX_RESPONSE_BYTES)
}

/// Admin answers (topic and subscription lists, dead-letter and audit pages) come gzipped when
/// the broker offers it: they are repetitive and can be large. Requests go plain (they are
/// small), as do messaging calls, whose batches carry their own compression.
pub(crate) fn admin_client(conn: Conn) -> v1::admin_client::AdminClient<Conn> {
    v1::admin_client::AdminClient::new(conn)
        .max_decoding_message_size(MAX_RESPONSE_BYTES)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
}
