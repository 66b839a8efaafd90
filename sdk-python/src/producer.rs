//! `rapidmq._native.Producer` and `SendReceipt`: sends go straight to the core's batching
//! producer; a receipt resolves when the core reports the batch's outcome.
//!
//! `send_batch` converts a whole batch with the GIL held once, queues while the producer has
//! room, and waits for room for the rest in one blocking call (GIL released) or one awaitable.
//! `on_delivery` callbacks of a batch run from one task that enters the interpreter once per
//! group of outcomes known together ([`notify`]), not once per message.

use futures::FutureExt;
use futures::future::Shared;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use rapidmq_core::{self as core, ErrorCode, Runtime};

use crate::convert::{MessageOptions, to_batch_message, to_message, to_messages};
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
        SendReceipt::new(receipt, &self.runtime)
    }
}

/// What a batch send queued, in order, and the error that stopped it before the end.
struct Queued {
    receipts: Vec<core::SendReceipt>,
    stopped: Option<core::Error>,
}

impl Queued {
    /// The Python receipts, with `on_delivery` registered on all of them; or the error that
    /// stopped the batch (the messages queued before it still get `on_delivery`).
    fn finish(
        self,
        runtime: &Runtime,
        on_delivery: Option<Py<PyAny>>,
    ) -> core::Result<Vec<SendReceipt>> {
        let receipts: Vec<SendReceipt> = self
            .receipts
            .into_iter()
            .map(|receipt| SendReceipt::new(receipt, runtime))
            .collect();
        if let Some(callback) = on_delivery {
            let outcomes = receipts.iter().map(|r| r.inner.clone()).collect();
            notify(runtime, outcomes, callback);
        }
        match self.stopped {
            Some(err) => Err(err),
            None => Ok(receipts),
        }
    }
}

/// `receipts` as a Python list of untracked objects (see [`SendReceipt::into_untracked`]).
fn untracked_list(
    py: Python<'_>,
    receipts: Vec<SendReceipt>,
) -> PyResult<Bound<'_, pyo3::types::PyList>> {
    let objects = receipts
        .into_iter()
        .map(|receipt| receipt.into_untracked(py))
        .collect::<PyResult<Vec<_>>>()?;
    pyo3::types::PyList::new(py, objects)
}

/// Queues `messages` after `queued`, in order, each waiting for room in the buffer.
async fn send_all(
    producer: core::Producer,
    mut queued: Queued,
    messages: impl Iterator<Item = core::Message>,
) -> Queued {
    for message in messages {
        match producer.send(message).await {
            Ok(receipt) => queued.receipts.push(receipt),
            Err(err) => {
                queued.stopped = Some(err);
                break;
            }
        }
    }
    queued
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
    fn send<'py>(
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
    ) -> PyResult<Bound<'py, SendReceipt>> {
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
            Ok(receipt) => self.receipt(receipt).into_untracked(py),
            Err(err) if buffer_full(&err) => {
                let message = to_message(value, &options)?;
                let producer = producer.clone();
                let receipt = wait(
                    py,
                    &self.runtime,
                    async move { producer.send(message).await },
                )?;
                self.receipt(receipt).into_untracked(py)
            }
            Err(err) => Err(to_py_err(err)),
        }
    }

    /// Queues every message of `messages` (payloads or `rapidmq.Message`s) in order and returns
    /// their receipts in the same order. All are converted and checked first (an invalid one
    /// raises `InvalidArgumentError` naming its index and queues none, conformance C30); the batch is queued with the GIL held while the
    /// buffer has room, then the rest waits for room with the GIL released (interruptible) or,
    /// with `asyncio=True`, in an awaitable of the list (the list itself when nothing waited).
    /// An error while queueing (a closed producer, Ctrl-C) raises; the messages before it stay
    /// queued and get `on_delivery`.
    #[pyo3(signature = (messages, on_delivery=None, asyncio=false))]
    fn send_batch(
        &self,
        py: Python<'_>,
        messages: &Bound<'_, PyAny>,
        on_delivery: Option<Py<PyAny>>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let producer = self.core.get()?;
        let (messages, items) = to_messages(messages)?;
        core::Producer::check_batch(&messages).map_err(to_py_err)?;
        let mut queued = Queued {
            receipts: Vec::with_capacity(messages.len()),
            stopped: None,
        };
        let mut messages = messages.into_iter();
        let mut full_at = None;
        for (index, message) in messages.by_ref().enumerate() {
            match producer.try_send(message) {
                Ok(receipt) => queued.receipts.push(receipt),
                Err(err) if buffer_full(&err) => {
                    full_at = Some(index);
                    break;
                }
                Err(err) => {
                    queued.stopped = Some(err);
                    break;
                }
            }
        }
        let Some(index) = full_at else {
            let receipts = queued
                .finish(&self.runtime, on_delivery)
                .map_err(to_py_err)?;
            return untracked_list(py, receipts)?.into_py_any(py);
        };
        // `try_send` consumed the message it had no room for: convert that one again.
        let first = to_batch_message(&items[index])?;
        let rest = std::iter::once(first).chain(messages);
        let (producer, runtime) = (producer.clone(), self.runtime.clone());
        let waiting = async move {
            let queued = send_all(producer, queued, rest).await;
            queued.finish(&runtime, on_delivery)
        };
        if asyncio {
            Ok(awaitable(py, waiting)?.unbind())
        } else {
            untracked_list(py, wait(py, &self.runtime, waiting)?)?.into_py_any(py)
        }
    }

    /// Like `send`, but returns None instead of waiting when the buffer is full.
    #[pyo3(signature = (
        value, key=None, headers=None, timestamp_ms=None, delay=None, deliver_at_ms=None,
        ttl=None, priority=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn try_send<'py>(
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
    ) -> PyResult<Option<Bound<'py, SendReceipt>>> {
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
            Ok(receipt) => Ok(Some(self.receipt(receipt).into_untracked(py)?)),
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
            Ok(SendReceipt::new(receipt, &runtime))
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

impl SendReceipt {
    /// This receipt as a Python object that Python's cycle collector does not track. A receipt
    /// holds no Python object, so it can never be part of a reference cycle; tracked, a program
    /// that holds many (a batch send's receipts, awaited at the end) had the collector walk
    /// them all again on every full collection: 39% of the send_batch benchmark's time.
    fn into_untracked(self, py: Python<'_>) -> PyResult<Bound<'_, SendReceipt>> {
        let object = Bound::new(py, self)?;
        // SAFETY: `object` is alive and of a GC type (every #[pyclass] is); untracking twice
        // (its dealloc does it again) is allowed.
        unsafe { pyo3::ffi::PyObject_GC_UnTrack(object.as_ptr().cast()) };
        Ok(object)
    }

    fn new(receipt: core::SendReceipt, runtime: &Runtime) -> SendReceipt {
        SendReceipt {
            inner: receipt.shared(),
            runtime: runtime.clone(),
        }
    }
}

/// Calls `callback(delivery, error)` for each of `receipts`, in their order, from one task on
/// the core runtime: it waits for the next outcome, takes every later one already known with it,
/// and enters the interpreter once for the group. An exception the callback raises goes to
/// `sys.unraisablehook`.
fn notify(runtime: &Runtime, receipts: Vec<Shared<core::SendReceipt>>, callback: Py<PyAny>) {
    runtime.handle().spawn(async move {
        let mut receipts = receipts.into_iter().peekable();
        while let Some(next) = receipts.next() {
            let mut known = vec![next.await];
            while let Some(outcome) = receipts.peek().and_then(|r| r.clone().now_or_never()) {
                known.push(outcome);
                receipts.next();
            }
            Python::attach(|py| {
                for outcome in known {
                    call_back(py, &callback, outcome);
                }
            });
        }
    });
}

/// `callback(Delivery, None)` or `callback(None, the RapidMQError)`.
fn call_back(py: Python<'_>, callback: &Py<PyAny>, outcome: core::Result<core::Delivery>) {
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
        notify(&self.runtime, vec![self.inner.clone()], callback);
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
