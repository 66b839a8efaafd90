//! Python values to core types: payloads, messages, start positions, durations and configs.
//! Durations are float seconds in Python; configuration starts from the core's defaults and only
//! the values the caller gave replace them.

use std::time::Duration;

use bytes::Bytes;
use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyMemoryView, PyString, PyType};
use rapidmq_core::{
    self as core, ClientConfig, ConsumerConfig, Credentials, Error, ProducerConfig, RetryPolicy,
    StartPosition, TlsConfig,
};

use crate::errors::to_py_err;

pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
    to_py_err(Error::InvalidArgument {
        message: message.into(),
    })
}

/// `bytes`, `bytearray`, `str` (UTF-8), or any other object with the buffer protocol
/// (`memoryview`, `array.array`, …). Not whatever `bytes()` accepts: `bytes(42)` is 42 zero bytes
/// and `bytes([1, 2])` a list's items, never what a caller meant as a payload.
pub(crate) fn to_bytes(value: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Bytes::copy_from_slice(s.to_cow()?.as_bytes()));
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    let py = value.py();
    let view = py.get_type::<PyMemoryView>().call1((value,)).map_err(|_| {
        invalid(format!(
            "expected bytes, bytearray, memoryview or str, got {}",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let converted = view.call_method0(intern!(py, "tobytes"))?;
    Ok(Bytes::copy_from_slice(
        converted.cast::<PyBytes>()?.as_bytes(),
    ))
}

/// Headers as a mapping or an iterable of `(name, value)` pairs; names are `str`.
pub(crate) fn to_headers(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Bytes)>> {
    let pairs = match headers.cast::<PyDict>() {
        Ok(dict) => dict.items().into_any(),
        Err(_) => headers.clone(),
    };
    let mut out = Vec::new();
    for pair in pairs.try_iter()? {
        let (name, value): (String, Bound<'_, PyAny>) = pair?
            .extract()
            .map_err(|_| invalid("headers must be (str, bytes) pairs"))?;
        out.push((name, to_bytes(&value)?));
    }
    Ok(out)
}

/// The optional parts of a message to publish, as the Python `send` takes them.
#[derive(Default)]
pub(crate) struct MessageOptions<'a, 'py> {
    pub(crate) key: Option<&'a Bound<'py, PyAny>>,
    pub(crate) headers: Option<&'a Bound<'py, PyAny>>,
    pub(crate) timestamp_ms: Option<i64>,
    /// Seconds.
    pub(crate) delay: Option<f64>,
    pub(crate) deliver_at_ms: Option<i64>,
    /// Seconds.
    pub(crate) ttl: Option<f64>,
    pub(crate) priority: Option<u8>,
}

/// A message to publish.
pub(crate) fn to_message(
    value: &Bound<'_, PyAny>,
    options: &MessageOptions<'_, '_>,
) -> PyResult<core::Message> {
    Ok(core::Message {
        key: match options.key {
            Some(k) if !k.is_none() => Some(to_bytes(k)?),
            _ => None,
        },
        value: to_bytes(value)?,
        headers: match options.headers {
            Some(h) if !h.is_none() => to_headers(h)?,
            _ => Vec::new(),
        },
        timestamp_ms: options.timestamp_ms,
        delay: options.delay.map(|d| to_duration(d, "delay")).transpose()?,
        deliver_at_ms: options.deliver_at_ms,
        ttl: options.ttl.map(|t| to_duration(t, "ttl")).transpose()?,
        priority: options.priority.unwrap_or(0),
    })
}

/// `rapidmq.Message`, looked up once.
static MESSAGE_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The messages of a batch send, in order: each a payload (as [`to_bytes`] takes it) or a
/// `rapidmq.Message`. Converts all of them before anything is sent, so an invalid one fails the
/// call with an `InvalidArgumentError` naming its index and nothing queued. Also returns the
/// Python items, to convert one again when the producer had no room for it.
pub(crate) fn to_messages<'py>(
    messages: &Bound<'py, PyAny>,
) -> PyResult<(Vec<core::Message>, Vec<Bound<'py, PyAny>>)> {
    let py = messages.py();
    let class = MESSAGE_CLASS.import(py, "rapidmq.message", "Message")?;
    let expected = messages.len().unwrap_or(0);
    let (mut converted, mut items) = (Vec::with_capacity(expected), Vec::with_capacity(expected));
    for (index, item) in messages.try_iter()?.enumerate() {
        let item = item?;
        converted.push(batch_message(&item, class).map_err(|err| at_index(py, index, err))?);
        items.push(item);
    }
    Ok((converted, items))
}

/// One message of a batch send (see [`to_messages`]).
pub(crate) fn to_batch_message(item: &Bound<'_, PyAny>) -> PyResult<core::Message> {
    batch_message(
        item,
        MESSAGE_CLASS.import(item.py(), "rapidmq.message", "Message")?,
    )
}

/// A payload, or a `rapidmq.Message`'s fields.
fn batch_message(
    item: &Bound<'_, PyAny>,
    message_class: &Bound<'_, PyType>,
) -> PyResult<core::Message> {
    if !item.is_instance(message_class.as_any())? {
        return to_message(item, &MessageOptions::default());
    }
    let py = item.py();
    let key = item.getattr(intern!(py, "key"))?;
    let headers = item.getattr(intern!(py, "headers"))?;
    to_message(
        &item.getattr(intern!(py, "value"))?,
        &MessageOptions {
            key: Some(&key),
            headers: Some(&headers),
            timestamp_ms: field(item, intern!(py, "timestamp_ms"))?,
            delay: field(item, intern!(py, "delay"))?,
            deliver_at_ms: field(item, intern!(py, "deliver_at_ms"))?,
            ttl: field(item, intern!(py, "ttl"))?,
            priority: field(item, intern!(py, "priority"))?,
        },
    )
}

/// An optional attribute of a `rapidmq.Message`; a value of the wrong type is an
/// `InvalidArgumentError` naming it.
fn field<'py, T: for<'a> FromPyObject<'a, 'py>>(
    item: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<T>> {
    let value = item.getattr(name)?;
    if value.is_none() {
        return Ok(None);
    }
    value.extract::<T>().map(Some).map_err(|e| {
        let e: PyErr = e.into();
        invalid(format!("{name}: {e}"))
    })
}

/// `err` as the `InvalidArgumentError` of message `index` of a batch (caused by `err`); an
/// exception that is not an error (`KeyboardInterrupt`) as it is.
fn at_index(py: Python<'_>, index: usize, err: PyErr) -> PyErr {
    if !err.is_instance_of::<PyException>(py) {
        return err;
    }
    let value = err.value(py);
    let detail = value
        .getattr(intern!(py, "message"))
        .and_then(|m| m.extract::<String>())
        .unwrap_or_else(|_| value.to_string());
    let wrapped = invalid(format!("message {index}: {detail}"));
    wrapped.set_cause(py, Some(err));
    wrapped
}

/// `("latest", _)`, `("earliest", _)`, `("offset", n)` or `("timestamp", ms)`.
pub(crate) fn to_start(kind: &str, value: i64) -> PyResult<StartPosition> {
    match kind {
        "latest" => Ok(StartPosition::Latest),
        "earliest" => Ok(StartPosition::Earliest),
        "offset" => u64::try_from(value)
            .map(StartPosition::Offset)
            .map_err(|_| invalid("a start offset must be >= 0")),
        "timestamp" => Ok(StartPosition::Timestamp(value)),
        other => Err(invalid(format!(
            "start position `{other}` is not latest, earliest, offset or timestamp"
        ))),
    }
}

pub(crate) fn start_parts(start: StartPosition) -> (&'static str, i64) {
    match start {
        StartPosition::Latest => ("latest", 0),
        StartPosition::Earliest => ("earliest", 0),
        StartPosition::Offset(o) => ("offset", i64::try_from(o).unwrap_or(i64::MAX)),
        StartPosition::Timestamp(t) => ("timestamp", t),
    }
}

/// Float seconds to a duration.
pub(crate) fn to_duration(seconds: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| invalid(format!("{what} must be a finite number of seconds >= 0")))
}

pub(crate) fn to_storage(name: &str) -> PyResult<core::Storage> {
    match name {
        "default" => Ok(core::Storage::Default),
        "disk" => Ok(core::Storage::Disk),
        "memory" => Ok(core::Storage::Memory),
        other => Err(invalid(format!(
            "storage `{other}` is not default, disk or memory"
        ))),
    }
}

pub(crate) fn to_durability(name: &str) -> PyResult<core::Durability> {
    match name {
        "unspecified" => Ok(core::Durability::Unspecified),
        "fsync" => Ok(core::Durability::Fsync),
        "buffered" => Ok(core::Durability::Buffered),
        "memory" => Ok(core::Durability::Memory),
        other => Err(invalid(format!(
            "durability `{other}` is not unspecified, fsync, buffered or memory"
        ))),
    }
}

/// Reads optional keys of a Python config dict, keeping the core default for absent/None ones.
struct Fields<'a, 'py>(&'a Bound<'py, PyDict>);

impl<'py> Fields<'_, 'py> {
    fn get<T: for<'a> FromPyObject<'a, 'py>>(&self, key: &str) -> PyResult<Option<T>> {
        match self.0.get_item(key)? {
            Some(v) if !v.is_none() => v.extract::<T>().map(Some).map_err(|e| {
                let e: PyErr = e.into();
                invalid(format!("{key}: {e}"))
            }),
            _ => Ok(None),
        }
    }

    fn set<T: for<'a> FromPyObject<'a, 'py>>(&self, key: &str, slot: &mut T) -> PyResult<()> {
        if let Some(v) = self.get(key)? {
            *slot = v;
        }
        Ok(())
    }

    fn set_duration(&self, key: &str, slot: &mut Duration) -> PyResult<()> {
        if let Some(v) = self.get::<f64>(key)? {
            *slot = to_duration(v, key)?;
        }
        Ok(())
    }

    fn retry(&self, key: &str, slot: &mut RetryPolicy) -> PyResult<()> {
        if let Some(d) = self.0.get_item(key)?.filter(|v| !v.is_none()) {
            let d = d
                .cast::<PyDict>()
                .map_err(|_| invalid(format!("{key} must be a dict")))?;
            let f = Fields(d);
            f.set_duration("initial_backoff", &mut slot.initial_backoff)?;
            f.set_duration("max_backoff", &mut slot.max_backoff)?;
            f.set("max_retries", &mut slot.max_retries)?;
            f.set_duration("delivery_timeout", &mut slot.delivery_timeout)?;
        }
        Ok(())
    }
}

/// A client config from `{endpoints, connect_timeout, request_timeout, tls, token, user,
/// password, tenant}`.
pub(crate) fn client_config(d: &Bound<'_, PyDict>) -> PyResult<ClientConfig> {
    let f = Fields(d);
    let mut config = ClientConfig::default();
    f.set("endpoints", &mut config.endpoints)?;
    f.set_duration("connect_timeout", &mut config.connect_timeout)?;
    f.set_duration("request_timeout", &mut config.request_timeout)?;
    if let Some(tls) = d.get_item("tls")?.filter(|v| !v.is_none()) {
        let tls = tls
            .cast::<PyDict>()
            .map_err(|_| invalid("tls must be a dict"))?;
        let t = Fields(tls);
        config.tls = Some(TlsConfig {
            ca_cert_path: t.get("ca_cert_path")?,
            ca_cert_pem: t.get("ca_cert_pem")?,
            client_cert_path: t.get("client_cert_path")?,
            client_cert_pem: t.get("client_cert_pem")?,
            client_key_path: t.get("client_key_path")?,
            client_key_pem: t.get("client_key_pem")?,
            server_name: t.get("server_name")?,
        });
    }
    if let Some(token) = f.get::<String>("token")? {
        config.credentials = Some(Credentials::Token(token));
    }
    if let Some(user) = f.get::<String>("user")? {
        config.credentials = Some(Credentials::UserPassword {
            user,
            password: f.get("password")?.unwrap_or_default(),
        });
    }
    config.tenant = f.get("tenant")?;
    Ok(config)
}

/// A producer config for `topic` from the Python `ProducerConfig` fields.
pub(crate) fn producer_config(topic: String, d: &Bound<'_, PyDict>) -> PyResult<ProducerConfig> {
    let f = Fields(d);
    let mut config = ProducerConfig::new(topic);
    f.set_duration("linger", &mut config.linger)?;
    f.set("max_batch_messages", &mut config.max_batch_messages)?;
    f.set("max_batch_bytes", &mut config.max_batch_bytes)?;
    f.set("max_in_flight_requests", &mut config.max_in_flight_requests)?;
    f.set(
        "max_in_flight_per_partition",
        &mut config.max_in_flight_per_partition,
    )?;
    f.set("max_buffered_messages", &mut config.max_buffered_messages)?;
    f.set("idempotence", &mut config.idempotence)?;
    f.retry("retry", &mut config.retry)?;
    if let Some(name) = f.get::<String>("compression")? {
        config.compression = name.parse().map_err(to_py_err)?;
    }
    Ok(config)
}

/// A consumer config for `topic`/`subscription` from the Python `ConsumerConfig` fields; `start`
/// is a `(kind, value)` pair.
pub(crate) fn consumer_config(
    topic: String,
    subscription: String,
    d: &Bound<'_, PyDict>,
) -> PyResult<ConsumerConfig> {
    let f = Fields(d);
    let mut config = ConsumerConfig::new(topic, subscription);
    if let Some((kind, value)) = f.get::<(String, i64)>("start")? {
        config.start = to_start(&kind, value)?;
    }
    f.set("prefetch", &mut config.prefetch)?;
    f.set("prefetch_bytes", &mut config.prefetch_bytes)?;
    f.set_duration("commit_interval", &mut config.commit_interval)?;
    f.set("auto_commit", &mut config.auto_commit)?;
    f.set("consumer_name", &mut config.consumer_name)?;
    f.retry("reconnect", &mut config.reconnect)?;
    if let Some(queue) = d.get_item("queue")?.filter(|v| !v.is_none()) {
        let queue = queue
            .cast::<PyDict>()
            .map_err(|_| invalid("queue must be a dict"))?;
        let q = Fields(queue);
        if let Some(deadline) = q.get::<f64>("ack_deadline")? {
            config.queue.ack_deadline = Some(to_duration(deadline, "ack_deadline")?);
        }
        config.queue.max_deliveries = q.get("max_deliveries")?;
        config.queue.dead_letter_topic = q.get("dead_letter_topic")?;
    }
    Ok(config)
}

fn retry_dict<'py>(py: Python<'py>, r: &RetryPolicy) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("initial_backoff", r.initial_backoff.as_secs_f64())?;
    d.set_item("max_backoff", r.max_backoff.as_secs_f64())?;
    d.set_item("max_retries", r.max_retries)?;
    d.set_item("delivery_timeout", r.delivery_timeout.as_secs_f64())?;
    Ok(d)
}

/// The core's defaults, as the Python config classes show them: `{"client": {...}, "producer":
/// {...}, "consumer": {...}}`, durations in seconds.
#[pyfunction]
pub(crate) fn defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let client = ClientConfig::default();
    let c = PyDict::new(py);
    c.set_item("endpoints", client.endpoints)?;
    c.set_item("connect_timeout", client.connect_timeout.as_secs_f64())?;
    c.set_item("request_timeout", client.request_timeout.as_secs_f64())?;

    let producer = ProducerConfig::new("");
    let p = PyDict::new(py);
    p.set_item("linger", producer.linger.as_secs_f64())?;
    p.set_item("max_batch_messages", producer.max_batch_messages)?;
    p.set_item("max_batch_bytes", producer.max_batch_bytes)?;
    p.set_item("max_in_flight_requests", producer.max_in_flight_requests)?;
    p.set_item(
        "max_in_flight_per_partition",
        producer.max_in_flight_per_partition,
    )?;
    p.set_item("max_buffered_messages", producer.max_buffered_messages)?;
    p.set_item("idempotence", producer.idempotence)?;
    p.set_item("retry", retry_dict(py, &producer.retry)?)?;
    p.set_item("compression", producer.compression.name())?;

    let consumer = ConsumerConfig::new("", "");
    let s = PyDict::new(py);
    s.set_item("start", start_parts(consumer.start))?;
    s.set_item("prefetch", consumer.prefetch)?;
    s.set_item("prefetch_bytes", consumer.prefetch_bytes)?;
    s.set_item("commit_interval", consumer.commit_interval.as_secs_f64())?;
    s.set_item("auto_commit", consumer.auto_commit)?;
    s.set_item("consumer_name", consumer.consumer_name)?;
    s.set_item("reconnect", retry_dict(py, &consumer.reconnect)?)?;
    s.set_item(
        "close_timeout",
        rapidmq_core::defaults::CLOSE_TIMEOUT.as_secs_f64(),
    )?;

    let run = rapidmq_core::RunConfig::default();
    let r = PyDict::new(py);
    r.set_item("concurrency", run.concurrency)?;
    r.set_item("retry_backoff", run.retry_backoff.as_secs_f64())?;
    r.set_item("max_retry_backoff", run.max_retry_backoff.as_secs_f64())?;

    let all = PyDict::new(py);
    all.set_item("client", c)?;
    all.set_item("producer", p)?;
    all.set_item("consumer", s)?;
    all.set_item("run", r)?;
    Ok(all)
}

/// The delay, in seconds, before a delivery whose handler failed at `attempt` comes back: the
/// core's `retry_delay` (`retry_backoff` doubled per earlier attempt, at most
/// `max_retry_backoff`), so every SDK backs off the same way.
#[pyfunction]
pub(crate) fn retry_delay(
    attempt: u32,
    retry_backoff: f64,
    max_retry_backoff: f64,
) -> PyResult<f64> {
    let seconds = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| invalid(format!("{what}: {s} is not a duration")))
    };
    let delay = rapidmq_core::retry_delay(
        attempt,
        seconds(retry_backoff, "retry_backoff")?,
        seconds(max_retry_backoff, "max_retry_backoff")?,
    );
    Ok(delay.as_secs_f64())
}
