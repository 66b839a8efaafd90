//! `rapidmq._native.Client`: a core [`Client`](rapidmq_core::Client) on the binding's runtime.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rapidmq_core as core;

use crate::admin::Admin;
use crate::consumer::Consumer;
use crate::convert::{
    MessageOptions, client_config, consumer_config, producer_config, to_duration, to_message,
};
use crate::errors::to_py_err;
use crate::producer::Producer;
use crate::queue::QueueConsumer;
use crate::runtime::{ProcessLocal, bridge, runtime};
use crate::types::{Delivery, FetchResult, PublishAck, ReceivedMessage};

/// `(value, key, headers, timestamp_ms)` of `publish_batch`.
type RawMessage<'py> = (
    Bound<'py, PyAny>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    Option<i64>,
);

/// A connection to a broker. Built by `connect`; used by the Python `Client` classes.
#[pyclass(module = "rapidmq._native", name = "Client", frozen)]
pub(crate) struct Client {
    core: ProcessLocal<core::Client>,
}

impl Client {
    fn core(&self) -> PyResult<&core::Client> {
        self.core.get()
    }
}

/// Connects with the given config dict (see `convert::client_config`); blocks, or returns an
/// awaitable when `asyncio` is true.
#[pyfunction]
#[pyo3(signature = (config, asyncio=false))]
pub(crate) fn connect(
    py: Python<'_>,
    config: &Bound<'_, PyDict>,
    asyncio: bool,
) -> PyResult<Py<PyAny>> {
    let config = client_config(config)?;
    let rt = runtime()?;
    let future_rt = rt.clone();
    bridge(py, &rt, asyncio, async move {
        let core = core::Client::connect(future_rt, config).await?;
        Ok(Client {
            core: ProcessLocal::new(core),
        })
    })
}

#[pymethods]
impl Client {
    /// The endpoints in use.
    fn endpoints(&self) -> PyResult<Vec<String>> {
        Ok(self.core()?.endpoints())
    }

    /// Whether `close` was called.
    fn is_closed(&self) -> PyResult<bool> {
        Ok(self.core()?.is_closed())
    }

    /// Replaces the endpoints; producers and consumers follow on their next reconnect.
    fn set_endpoints(&self, endpoints: Vec<String>) -> PyResult<()> {
        self.core()?.set_endpoints(endpoints).map_err(to_py_err)
    }

    /// Closes every producer (flushing) and consumer (final commits and acks) made from this
    /// client, then the connection; idempotent. Afterwards they and the client raise
    /// `ClosedError`.
    #[pyo3(signature = (asyncio=false))]
    fn close(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        bridge(py, &client.runtime().clone(), asyncio, async move {
            client.close().await
        })
    }

    /// The admin API.
    fn admin(&self) -> PyResult<Admin> {
        let core = self.core()?;
        Ok(Admin::new(core.admin(), core.runtime().clone()))
    }

    /// Creates a producer for `topic` with the given config dict.
    #[pyo3(signature = (topic, config, asyncio=false))]
    fn producer(
        &self,
        py: Python<'_>,
        topic: String,
        config: &Bound<'_, PyDict>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        let config = producer_config(topic, config)?;
        bridge(py, &client.runtime().clone(), asyncio, async move {
            let core = client.create_producer(config).await?;
            Ok(Producer::new(core))
        })
    }

    /// Subscribes to `topic` (stream mode) with the given config dict.
    #[pyo3(signature = (topic, subscription, config, asyncio=false))]
    fn subscribe(
        &self,
        py: Python<'_>,
        topic: String,
        subscription: String,
        config: &Bound<'_, PyDict>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        let config = consumer_config(topic, subscription, config)?;
        let runtime = client.runtime().clone();
        bridge(py, &runtime.clone(), asyncio, async move {
            let core = client.subscribe(config).await?;
            Ok(Consumer::new(core, runtime))
        })
    }

    /// Subscribes to `topic` in queue mode (creating the subscription with the config's queue
    /// settings if it does not exist).
    #[pyo3(signature = (topic, subscription, config, asyncio=false))]
    fn subscribe_queue(
        &self,
        py: Python<'_>,
        topic: String,
        subscription: String,
        config: &Bound<'_, PyDict>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        let config = consumer_config(topic, subscription, config)?;
        let runtime = client.runtime().clone();
        bridge(py, &runtime.clone(), asyncio, async move {
            let core = client.subscribe_queue(config).await?;
            Ok(QueueConsumer::new(core, runtime))
        })
    }

    /// Publishes `messages` (a list of `(value, key, headers, timestamp_ms)`) to one partition in
    /// one attempt: no batching, no retries. `producer_id` 0 disables idempotence.
    #[pyo3(signature = (topic, partition, producer_id, base_sequence, messages, asyncio=false))]
    #[allow(clippy::too_many_arguments)]
    fn publish_batch(
        &self,
        py: Python<'_>,
        topic: String,
        partition: u32,
        producer_id: u64,
        base_sequence: u64,
        messages: &Bound<'_, PyList>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        let mut batch = Vec::with_capacity(messages.len());
        for item in messages.iter() {
            let (value, key, headers, timestamp_ms): RawMessage<'_> = item.extract()?;
            let options = MessageOptions {
                key: key.as_ref(),
                headers: headers.as_ref(),
                timestamp_ms,
                ..MessageOptions::default()
            };
            batch.push(to_message(&value, &options)?);
        }
        bridge(py, &client.runtime().clone(), asyncio, async move {
            client
                .publish_batch(topic, partition, producer_id, base_sequence, batch)
                .await
                .map(PublishAck::from)
        })
    }

    /// Reads up to `max_messages` from `partition` starting at `offset`, waiting up to
    /// `max_wait` seconds for data.
    #[pyo3(signature = (topic, partition, offset, max_messages, max_wait, asyncio=false))]
    #[allow(clippy::too_many_arguments)]
    fn fetch(
        &self,
        py: Python<'_>,
        topic: String,
        partition: u32,
        offset: u64,
        max_messages: u32,
        max_wait: f64,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        let max_wait = to_duration(max_wait, "max_wait")?;
        bridge(py, &client.runtime().clone(), asyncio, async move {
            client
                .fetch(topic, partition, offset, max_messages, max_wait)
                .await
                .map(FetchResult::from)
        })
    }

    /// Sends a message (`value` and the fields of `Producer.send`) to `topic` as a request and
    /// returns the first reply (a `ReceivedMessage`), waiting at most `timeout` seconds for the
    /// send and the reply together. The core sets the `reply-to` and `correlation-id` headers.
    #[pyo3(signature = (
        topic, timeout, value, key=None, headers=None, timestamp_ms=None, delay=None,
        deliver_at_ms=None, ttl=None, priority=None, *, asyncio=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        py: Python<'_>,
        topic: String,
        timeout: f64,
        value: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        timestamp_ms: Option<i64>,
        delay: Option<f64>,
        deliver_at_ms: Option<i64>,
        ttl: Option<f64>,
        priority: Option<u8>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        let timeout = to_duration(timeout, "timeout")?;
        let options = MessageOptions {
            key,
            headers,
            timestamp_ms,
            delay,
            deliver_at_ms,
            ttl,
            priority,
        };
        let message = to_message(value, &options)?;
        bridge(py, &client.runtime().clone(), asyncio, async move {
            let inner = client.request(topic, message, timeout).await?;
            Ok(ReceivedMessage { inner })
        })
    }

    /// Answers `request` (a received message that was sent with `request`) with a message
    /// (`value` and the fields of `Producer.send`): sends it to the request's `reply-to` topic
    /// with its `correlation-id`, and returns the `Delivery` once the broker stored it.
    #[pyo3(signature = (
        request, value, key=None, headers=None, timestamp_ms=None, delay=None,
        deliver_at_ms=None, ttl=None, priority=None, *, asyncio=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn reply(
        &self,
        py: Python<'_>,
        request: &ReceivedMessage,
        value: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        timestamp_ms: Option<i64>,
        delay: Option<f64>,
        deliver_at_ms: Option<i64>,
        ttl: Option<f64>,
        priority: Option<u8>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.core()?.clone();
        let options = MessageOptions {
            key,
            headers,
            timestamp_ms,
            delay,
            deliver_at_ms,
            ttl,
            priority,
        };
        let message = to_message(value, &options)?;
        let request_headers = request.inner.headers.clone();
        bridge(py, &client.runtime().clone(), asyncio, async move {
            client
                .reply(&request_headers, message)
                .await
                .map(Delivery::from)
        })
    }

    fn __repr__(&self) -> String {
        format!("Client(endpoints={:?})", self.core.unchecked().endpoints())
    }
}
