//! `rapidmq._native.Producer` and `SendReceipt`: sends go straight to the core's batching
//! producer; a receipt resolves when the core reports the batch's outcome.

use futures::FutureExt;
use futures::future::Shared;
use pyo3::prelude::*;
use rapidmq_core::{self as core, ErrorCode, Runtime};

use crate::convert::{MessageOptions, to_message};
use crate::errors::to_py_err;
use crate::runtime::{ProcessLocal, awaitable, bridge, wait};
use crate::types::{Delivery, ProducerStats};

/// Publishes to one topic through the core producer (batching, idempotence, retries).
#[pyclass(module = "rapidmq._native", name = "Producer", frozen)]
pub(crate) struct Producer {
    core: ProcessLocal<core::Producer>,
    runtime: Runtime,
}

impl Producer {
    pub(crate) fn new(core: core::Producer) -> Producer {
        let runtime = core.client().runtime().clone();
        Producer {
            core: ProcessLocal::new(core),
            runtime,
        }
    }

    fn receipt(&self, receipt: core::SendReceipt) -> SendReceipt {
        SendReceipt {
            inner: receipt.shared(),
            runtime: self.runtime.clone(),
        }
    }
}

/// Whether `try_send` failed only because the producer's buffer is full.
fn buffer_full(err: &core::Error) -> bool {
    err.code() == ErrorCode::ResourceExhausted
}

#[pymethods]
impl Producer {
    /// The topic.
    #[getter]
    fn topic(&self) -> PyResult<String> {
        Ok(self.core.get()?.topic().to_string())
    }

    /// The topic's partition count.
    #[getter]
    fn partitions(&self) -> PyResult<u32> {
        Ok(self.core.get()?.partitions())
    }

    /// Queues a message for its partition's batch. When the buffer is full, waits for room with
    /// the GIL released (interruptible).
    #[pyo3(signature = (
        value, key=None, headers=None, timestamp_ms=None, delay=None, deliver_at_ms=None,
        ttl=None, priority=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        timestamp_ms: Option<i64>,
        delay: Option<f64>,
        deliver_at_ms: Option<i64>,
        ttl: Option<f64>,
        priority: Option<u8>,
    ) -> PyResult<SendReceipt> {
        let producer = self.core.get()?;
        let options = MessageOptions {
            key,
            headers,
            timestamp_ms,
            delay,
            deliver_at_ms,
            ttl,
            priority,
        };
        match producer.try_send(to_message(value, &options)?) {
            Ok(receipt) => Ok(self.receipt(receipt)),
            Err(err) if buffer_full(&err) => {
                let message = to_message(value, &options)?;
                let producer = producer.clone();
                let receipt = wait(
                    py,
                    &self.runtime,
                    async move { producer.send(message).await },
                )?;
                Ok(self.receipt(receipt))
            }
            Err(err) => Err(to_py_err(err)),
        }
    }

    /// Like `send`, but returns None instead of waiting when the buffer is full.
    #[pyo3(signature = (
        value, key=None, headers=None, timestamp_ms=None, delay=None, deliver_at_ms=None,
        ttl=None, priority=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn try_send(
        &self,
        value: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        timestamp_ms: Option<i64>,
        delay: Option<f64>,
        deliver_at_ms: Option<i64>,
        ttl: Option<f64>,
        priority: Option<u8>,
    ) -> PyResult<Option<SendReceipt>> {
        let producer = self.core.get()?;
        let options = MessageOptions {
            key,
            headers,
            timestamp_ms,
            delay,
            deliver_at_ms,
            ttl,
            priority,
        };
        match producer.try_send(to_message(value, &options)?) {
            Ok(receipt) => Ok(Some(self.receipt(receipt))),
            Err(err) if buffer_full(&err) => Ok(None),
            Err(err) => Err(to_py_err(err)),
        }
    }

    /// `send` for asyncio: an awaitable of the receipt that waits for room in the buffer.
    #[pyo3(signature = (
        value, key=None, headers=None, timestamp_ms=None, delay=None, deliver_at_ms=None,
        ttl=None, priority=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn send_async<'py>(
        &self,
        py: Python<'py>,
        value: &Bound<'py, PyAny>,
        key: Option<&Bound<'py, PyAny>>,
        headers: Option<&Bound<'py, PyAny>>,
        timestamp_ms: Option<i64>,
        delay: Option<f64>,
        deliver_at_ms: Option<i64>,
        ttl: Option<f64>,
        priority: Option<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let producer = self.core.get()?.clone();
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
        let runtime = self.runtime.clone();
        awaitable(py, async move {
            let receipt = producer.send(message).await?;
            Ok(SendReceipt {
                inner: receipt.shared(),
                runtime,
            })
        })
    }

    /// Sends every batch now and waits until everything sent before completed.
    #[pyo3(signature = (asyncio=false))]
    fn flush(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let producer = self.core.get()?.clone();
        bridge(
            py,
            &self.runtime,
            asyncio,
            async move { producer.flush().await },
        )
    }

    /// Flushes, then stops the producer.
    #[pyo3(signature = (asyncio=false))]
    fn close(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let producer = self.core.get()?.clone();
        bridge(
            py,
            &self.runtime,
            asyncio,
            async move { producer.close().await },
        )
    }

    /// The counters so far.
    fn stats(&self) -> PyResult<ProducerStats> {
        Ok(self.core.get()?.stats().into())
    }

    /// Test hook: discard the next `n` successful publish responses as if the ack was lost.
    fn _lose_acks(&self, n: u32) -> PyResult<()> {
        self.core
            .get()?
            .faults()
            .lose_acks
            .store(n, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn __repr__(&self) -> String {
        let p = self.core.unchecked();
        format!(
            "Producer(topic='{}', partitions={})",
            p.topic(),
            p.partitions()
        )
    }
}

/// The eventual result of one `send`: a `Delivery`, or the error the core gave up with.
#[pyclass(module = "rapidmq", name = "SendReceipt", frozen)]
pub(crate) struct SendReceipt {
    inner: Shared<core::SendReceipt>,
    runtime: Runtime,
}

#[pymethods]
impl SendReceipt {
    /// Whether the outcome is known (never blocks).
    fn done(&self) -> bool {
        self.inner.peek().is_some() || self.inner.clone().now_or_never().is_some()
    }

    /// The delivery; blocks (GIL released, interruptible) until the batch completed. Raises the
    /// `RapidMQError` subclass of the failure.
    fn result(&self, py: Python<'_>) -> PyResult<Delivery> {
        let outcome = match self.inner.clone().now_or_never() {
            Some(outcome) => outcome.map_err(to_py_err)?,
            None => wait(py, &self.runtime, self.inner.clone())?,
        };
        Ok(outcome.into())
    }

    /// The delivery, as an asyncio awaitable.
    fn result_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        awaitable(py, async move { inner.await.map(Delivery::from) })
    }

    /// `await receipt` in asyncio code: the delivery.
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.result_async(py)?.call_method0("__await__")
    }

    /// Calls `callback(delivery, error)` once the outcome is known: `(Delivery, None)`, or
    /// `(None, the RapidMQError)`. It runs on one of the core's threads (attached to the
    /// interpreter), at once if the outcome is known already; an exception it raises goes to
    /// `sys.unraisablehook`.
    fn add_done_callback(&self, callback: Py<PyAny>) {
        let inner = self.inner.clone();
        self.runtime.handle().spawn(async move {
            let outcome = inner.await;
            Python::attach(|py| {
                let args = match outcome {
                    Ok(delivery) => match Py::new(py, Delivery::from(delivery)) {
                        Ok(delivery) => (delivery.into_any(), py.None()),
                        Err(err) => return err.write_unraisable(py, Some(callback.bind(py))),
                    },
                    Err(err) => (py.None(), to_py_err(err).into_value(py).into_any()),
                };
                if let Err(err) = callback.call1(py, args) {
                    err.write_unraisable(py, Some(callback.bind(py)));
                }
            });
        });
    }

    fn __repr__(&self) -> String {
        match self.inner.peek() {
            Some(Ok(d)) => format!(
                "SendReceipt(done, partition={}, offset={:?}, status={:?})",
                d.partition, d.offset, d.status
            ),
            Some(Err(e)) => format!("SendReceipt(failed: {e})"),
            None => "SendReceipt(pending)".into(),
        }
    }
}
