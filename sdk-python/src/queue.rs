//! `rapidmq._native.QueueConsumer` and `QueueMessage`: the core's queue-mode consumer
//! (deliveries with attempt counts and receipts, batched acks, `nack(delay)`, deadline extension).

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rapidmq_core::{self as core, Runtime};

use crate::convert::to_duration;
use crate::errors::to_py_err;
use crate::runtime::{ProcessLocal, bridge};
use crate::types::{ReceivedMessage, decode_json};

/// A member of a queue-mode subscription.
#[pyclass(module = "rapidmq._native", name = "QueueConsumer", frozen)]
pub(crate) struct QueueConsumer {
    core: ProcessLocal<core::QueueConsumer>,
    runtime: Runtime,
}

impl QueueConsumer {
    pub(crate) fn new(core: core::QueueConsumer, runtime: Runtime) -> QueueConsumer {
        QueueConsumer {
            core: ProcessLocal::new(core),
            runtime,
        }
    }
}

/// One delivery of a queue message: the message, its attempt count and its receipt.
#[pyclass(module = "rapidmq", name = "QueueMessage", frozen)]
pub(crate) struct QueueMessage {
    inner: core::QueueMessage,
}

#[pymethods]
impl QueueMessage {
    /// The message, with its partition and offset.
    #[getter]
    fn message(&self) -> ReceivedMessage {
        ReceivedMessage {
            inner: self.inner.message.clone(),
        }
    }

    /// 1 on the first delivery; counts survive broker restarts.
    #[getter]
    fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The payload (shortcut for `message.value`).
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.message.value)
    }

    /// The key (shortcut for `message.key`).
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.inner.message.key.as_ref().map(|k| PyBytes::new(py, k))
    }

    /// The message's value parsed as JSON, or the dataclass `cls` built from it (shortcut for
    /// `message.json(cls)`).
    #[pyo3(signature = (cls=None))]
    fn json<'py>(
        &self,
        py: Python<'py>,
        cls: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        decode_json(py, &self.inner.message.value, cls)
    }

    /// The partition.
    #[getter]
    fn partition(&self) -> u32 {
        self.inner.receipt.partition()
    }

    /// The offset in the partition.
    #[getter]
    fn offset(&self) -> u64 {
        self.inner.receipt.offset()
    }

    fn __repr__(&self) -> String {
        format!(
            "QueueMessage(partition={}, offset={}, attempt={}, {} bytes)",
            self.inner.receipt.partition(),
            self.inner.receipt.offset(),
            self.inner.attempt,
            self.inner.message.value.len()
        )
    }
}

/// A queue consumer's counters since it was created.
#[pyclass(module = "rapidmq", name = "QueueConsumerStats", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct QueueConsumerStats {
    /// Deliveries received from the broker.
    received: u64,
    /// Deliveries returned by `poll`.
    polled: u64,
    /// Deliveries buffered ahead of `poll` now.
    buffered: u64,
    /// The most deliveries ever buffered ahead of `poll`.
    max_buffered: u64,
    /// Acks sent.
    acked: u64,
    /// Nacks sent.
    nacked: u64,
    /// Deadline extensions sent.
    extended: u64,
    /// Ack requests (batches of acks) sent.
    ack_requests: u64,
    /// Receipts from before a reconnect, dropped locally.
    stale_receipts: u64,
    /// Errors the broker reported on the stream about single requests.
    stream_errors: u64,
    /// Sessions re-established after the stream broke.
    reconnects: u64,
}

impl From<core::QueueConsumerStats> for QueueConsumerStats {
    fn from(s: core::QueueConsumerStats) -> Self {
        QueueConsumerStats {
            received: s.received,
            polled: s.polled,
            buffered: s.buffered,
            max_buffered: s.max_buffered,
            acked: s.acked,
            nacked: s.nacked,
            extended: s.extended,
            ack_requests: s.ack_requests,
            stale_receipts: s.stale_receipts,
            stream_errors: s.stream_errors,
            reconnects: s.reconnects,
        }
    }
}

#[pymethods]
impl QueueConsumerStats {
    fn __repr__(&self) -> String {
        format!("{self:?}")
    }
}

#[pymethods]
impl QueueConsumer {
    /// The topic.
    #[getter]
    fn topic(&self) -> PyResult<String> {
        Ok(self.core.get()?.config().topic.clone())
    }

    /// The subscription name.
    #[getter]
    fn subscription(&self) -> PyResult<String> {
        Ok(self.core.get()?.config().subscription.clone())
    }

    /// Up to `max` deliveries, waiting up to `timeout` seconds for the first; [] when none came.
    #[pyo3(signature = (max, timeout, asyncio=false))]
    fn poll(&self, py: Python<'_>, max: usize, timeout: f64, asyncio: bool) -> PyResult<Py<PyAny>> {
        let consumer = self.core.get()?.clone();
        let timeout = to_duration(timeout, "timeout")?;
        bridge(py, &self.runtime, asyncio, async move {
            let messages = consumer.poll(max, timeout).await?;
            Ok(messages
                .into_iter()
                .map(|inner| QueueMessage { inner })
                .collect::<Vec<_>>())
        })
    }

    /// Acknowledges a delivery (batched; sent on the ack interval, `flush` and close).
    fn ack(&self, message: &QueueMessage) -> PyResult<()> {
        self.core
            .get()?
            .ack(&message.inner.receipt)
            .map_err(to_py_err)
    }

    /// Asks for redelivery after `delay` seconds (sent at once).
    fn nack(&self, message: &QueueMessage, delay: f64) -> PyResult<()> {
        let delay = to_duration(delay, "delay")?;
        self.core
            .get()?
            .nack(&message.inner.receipt, delay)
            .map_err(to_py_err)
    }

    /// Pushes the delivery's ack deadline `extension` seconds out (sent at once).
    fn extend_deadline(&self, message: &QueueMessage, extension: f64) -> PyResult<()> {
        let extension = to_duration(extension, "extension")?;
        self.core
            .get()?
            .extend_deadline(&message.inner.receipt, extension)
            .map_err(to_py_err)
    }

    /// Sends the pending acks now.
    #[pyo3(signature = (asyncio=false))]
    fn flush(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let consumer = self.core.get()?.clone();
        bridge(
            py,
            &self.runtime,
            asyncio,
            async move { consumer.flush().await },
        )
    }

    /// Sends the pending acks and leaves the subscription.
    #[pyo3(signature = (asyncio=false))]
    fn close(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let consumer = self.core.get()?.clone();
        bridge(
            py,
            &self.runtime,
            asyncio,
            async move { consumer.close().await },
        )
    }

    /// Errors the broker reported about single requests (e.g. `ReceiptUnknownError` for an ack
    /// of a delivery that already timed out), as exceptions, oldest first; clears them.
    fn take_stream_errors(&self) -> PyResult<Vec<PyErr>> {
        Ok(self
            .core
            .get()?
            .take_stream_errors()
            .into_iter()
            .map(to_py_err)
            .collect())
    }

    /// The counters so far.
    fn stats(&self) -> PyResult<QueueConsumerStats> {
        Ok(self.core.get()?.stats().into())
    }

    fn __repr__(&self) -> String {
        let c = self.core.unchecked().config();
        format!(
            "QueueConsumer(topic='{}', subscription='{}')",
            c.topic, c.subscription
        )
    }
}
