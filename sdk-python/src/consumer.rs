//! `rapidmq._native.Consumer`: the core's stream-mode consumer (prefetch credits, `poll`, acks
//! batched into commits, reconnects).

use pyo3::prelude::*;
use rapidmq_core::{self as core, Runtime};

use crate::convert::{start_parts, to_duration};
use crate::errors::to_py_err;
use crate::runtime::{ProcessLocal, bridge};
use crate::types::{ConsumerStats, ReceivedMessage};

/// A subscription member.
#[pyclass(module = "rapidmq._native", name = "Consumer", frozen)]
pub(crate) struct Consumer {
    core: ProcessLocal<core::Consumer>,
    runtime: Runtime,
}

impl Consumer {
    pub(crate) fn new(core: core::Consumer, runtime: Runtime) -> Consumer {
        Consumer {
            core: ProcessLocal::new(core),
            runtime,
        }
    }
}

#[pymethods]
impl Consumer {
    /// The topic.
    #[getter]
    fn topic(&self) -> PyResult<String> {
        Ok(self.core.get()?.config().topic.clone())
    }

    /// The subscription name ("" for an ephemeral live tail).
    #[getter]
    fn subscription(&self) -> PyResult<String> {
        Ok(self.core.get()?.config().subscription.clone())
    }

    /// The start position as `(kind, value)`.
    #[getter]
    fn start(&self) -> PyResult<(&'static str, i64)> {
        Ok(start_parts(self.core.get()?.config().start))
    }

    /// Up to `max` messages, waiting up to `timeout` seconds for the first; [] when none came.
    #[pyo3(signature = (max, timeout, asyncio=false))]
    fn poll(&self, py: Python<'_>, max: usize, timeout: f64, asyncio: bool) -> PyResult<Py<PyAny>> {
        let consumer = self.core.get()?.clone();
        let timeout = to_duration(timeout, "timeout")?;
        bridge(py, &self.runtime, asyncio, async move {
            let messages = consumer.poll(max, timeout).await?;
            Ok(messages
                .into_iter()
                .map(|inner| ReceivedMessage { inner })
                .collect::<Vec<_>>())
        })
    }

    /// Acknowledges a polled message.
    fn ack(&self, message: &ReceivedMessage) -> PyResult<()> {
        self.core.get()?.ack(&message.inner).map_err(to_py_err)
    }

    /// Acknowledges the message at `offset` on `partition`.
    fn ack_offset(&self, partition: u32, offset: u64) -> PyResult<()> {
        self.core
            .get()?
            .ack_offset(partition, offset)
            .map_err(to_py_err)
    }

    /// Negative acknowledgement with redelivery after `delay` seconds (queue mode).
    fn nack(&self, message: &ReceivedMessage, delay: f64) -> PyResult<()> {
        let delay = to_duration(delay, "delay")?;
        self.core
            .get()?
            .nack(&message.inner, delay)
            .map_err(to_py_err)
    }

    /// Sends the acknowledged positions now.
    #[pyo3(signature = (asyncio=false))]
    fn commit(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let consumer = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            consumer.commit().await
        })
    }

    /// Commits what was acknowledged and leaves the subscription.
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

    /// The partitions this member owns now.
    fn assignment(&self) -> PyResult<Vec<u32>> {
        Ok(self.core.get()?.assignment())
    }

    /// The counters so far.
    fn stats(&self) -> PyResult<ConsumerStats> {
        Ok(self.core.get()?.stats().into())
    }

    fn __repr__(&self) -> String {
        let c = self.core.unchecked().config();
        format!(
            "Consumer(topic='{}', subscription='{}')",
            c.topic, c.subscription
        )
    }
}
