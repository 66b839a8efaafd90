//! Runtime bridging: the one core [`Runtime`] this binding owns, blocking waits that release the
//! GIL and stay interruptible, asyncio futures, and fork detection.
//!
//! - **One runtime per process.** The binding creates a core [`Runtime`] on first use and every
//!   client of the process spawns on it. The core never looks for an ambient runtime.
//! - **Sync calls** ([`wait`]) run the core future as a task on that runtime and wait for its
//!   result with the GIL released, waking every [`SIGNAL_CHECK`] to run Python's signal handlers,
//!   so Ctrl-C raises `KeyboardInterrupt` in a blocking call instead of being deferred until it
//!   returns.
//! - **asyncio calls** ([`awaitable`]) hand the core future to pyo3-async-runtimes, which resolves
//!   an `asyncio.Future` on the caller's event loop. Its tasks run on the same core runtime
//!   (through [`CoreRuntime`], a `pyo3_async_runtimes::generic::Runtime`).
//! - **Fork.** The runtime's threads do not exist in a child created by `fork()`, so every object
//!   remembers the pid that created it ([`Pid`]) and refuses to work in another process with
//!   `ForkError`. A client created *in* the child gets a fresh runtime.

use std::cell::OnceCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{self, ContextExt};
use rapidmq_core::Runtime;

use crate::errors::{forked_error, to_py_err};

/// How often a blocking call wakes up to let Python run its signal handlers.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// Worker threads of the binding's runtime: enough to overlap network and decoding with the
/// Python threads that call in, without competing with them on small machines.
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().clamp(1, 4))
        .unwrap_or(2)
}

/// The runtime of this process, with the pid that created it.
static RUNTIME: Mutex<Option<(u32, Runtime)>> = Mutex::new(None);

/// The core runtime of this process, created on first use (and again in a forked child, whose
/// copy of the parent's runtime has no threads).
pub(crate) fn runtime() -> PyResult<Runtime> {
    let pid = std::process::id();
    let mut current = RUNTIME.lock();
    if let Some((owner, runtime)) = current.as_ref() {
        if *owner == pid {
            return Ok(runtime.clone());
        }
        // The parent's runtime: its threads are gone, so it can neither run nor shut down here.
        std::mem::forget(current.take());
    }
    let runtime = Runtime::new(worker_threads()).map_err(to_py_err)?;
    *current = Some((pid, runtime.clone()));
    Ok(runtime)
}

/// Stops this process's runtime, waiting briefly for its threads; registered with `atexit` so
/// no runtime thread calls into Python while the interpreter finalizes.
#[pyfunction]
pub(crate) fn shutdown(py: Python<'_>) {
    let taken = {
        let mut current = RUNTIME.lock();
        match current.as_ref() {
            Some((owner, _)) if *owner == std::process::id() => current.take(),
            _ => None,
        }
    };
    if let Some((_, runtime)) = taken {
        py.detach(|| runtime.shutdown(Duration::from_secs(2)));
    }
}

/// The process that created an object; checked before each use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pid(u32);

impl Pid {
    pub(crate) fn current() -> Pid {
        Pid(std::process::id())
    }

    /// Fails with `ForkError` when called in a process other than the creator.
    pub(crate) fn check(self) -> PyResult<()> {
        if self.is_current() {
            Ok(())
        } else {
            Err(forked_error())
        }
    }

    pub(crate) fn is_current(self) -> bool {
        self.0 == std::process::id()
    }
}

/// A value tied to the process that created it: [`ProcessLocal::get`] fails with `ForkError` in
/// another process, and a forked child leaks the value instead of dropping it, since dropping
/// may touch locks held by runtime threads that do not exist in the child.
pub(crate) struct ProcessLocal<T> {
    value: ManuallyDrop<T>,
    pid: Pid,
}

impl<T> ProcessLocal<T> {
    pub(crate) fn new(value: T) -> ProcessLocal<T> {
        ProcessLocal {
            value: ManuallyDrop::new(value),
            pid: Pid::current(),
        }
    }

    /// The value, in the process that created it.
    pub(crate) fn get(&self) -> PyResult<&T> {
        self.pid.check()?;
        Ok(&self.value)
    }

    /// The value without the process check, for `__repr__` and the like.
    pub(crate) fn unchecked(&self) -> &T {
        &self.value
    }
}

impl<T> Drop for ProcessLocal<T> {
    fn drop(&mut self) {
        if self.pid.is_current() {
            // SAFETY: `value` is dropped exactly once, here, and never used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}

/// Runs `future` on the core runtime and blocks the calling thread until it completes, with the
/// GIL released. Python signal handlers run every [`SIGNAL_CHECK`]; when one raises (Ctrl-C), the
/// task is aborted and the exception propagates.
pub(crate) fn wait<F, T>(py: Python<'_>, runtime: &Runtime, future: F) -> PyResult<T>
where
    F: Future<Output = rapidmq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = sync_channel(1);
    let task = runtime.handle().spawn(async move {
        let _ = tx.send(future.await);
    });
    let mut rx = rx;
    loop {
        let (received, back) = py.detach(move || (rx.recv_timeout(SIGNAL_CHECK), rx));
        rx = back;
        match received {
            Ok(result) => return result.map_err(to_py_err),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(interrupted) = py.check_signals() {
                    task.abort();
                    return Err(interrupted);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(to_py_err(rapidmq_core::Error::Closed {
                    message: "the client runtime stopped during the call".into(),
                }));
            }
        }
    }
}

/// Turns `future` into an `asyncio.Future` of the running event loop. The result is converted to
/// Python on the loop's thread; a core error becomes the matching `RapidMQError` subclass.
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = rapidmq_core::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    // Make sure the runtime of this process exists before pyo3-async-runtimes spawns on it.
    runtime()?;
    generic::future_into_py::<CoreRuntime, _, T>(py, async move {
        match future.await {
            Ok(value) => Ok(value),
            Err(err) => Err(to_py_err(err)),
        }
    })
}

/// Either a blocking wait or an asyncio future, chosen by the caller (the sync and the asyncio
/// Python classes share one native method per operation).
pub(crate) fn bridge<F, T>(
    py: Python<'_>,
    runtime: &Runtime,
    asyncio: bool,
    future: F,
) -> PyResult<Py<PyAny>>
where
    F: Future<Output = rapidmq_core::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    if asyncio {
        Ok(awaitable(py, future)?.unbind())
    } else {
        let value = wait(py, runtime, future)?;
        value.into_py_any(py)
    }
}

/// pyo3-async-runtimes' view of the core runtime: it spawns the bridging tasks there instead of on
/// a runtime of its own.
pub(crate) struct CoreRuntime;

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

impl generic::Runtime for CoreRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        current_handle().spawn(fut)
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        current_handle().spawn_blocking(f)
    }
}

impl ContextExt for CoreRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|c| c.get().cloned())
            .unwrap_or_default()
    }
}

/// The tokio handle of this process's runtime; [`awaitable`] creates the runtime before anything
/// is spawned, so it exists here.
fn current_handle() -> tokio::runtime::Handle {
    let current = RUNTIME.lock();
    match current.as_ref() {
        Some((owner, runtime)) if *owner == std::process::id() => runtime.handle().clone(),
        _ => {
            drop(current);
            // Unreachable through `awaitable`; a panic here becomes a Python `PanicException`.
            runtime()
                .map(|r| r.handle().clone())
                .unwrap_or_else(|_| panic!("the RapidMQ client runtime could not be started"))
        }
    }
}
