//! Runtime bridging: the one core [`Runtime`] of the process, and how calls reach it.
//!
//! - **One runtime per process**, created on first use; every client spawns on it. The core never
//!   looks for an ambient runtime, and neither do the generated bindings: UniFFI polls an async
//!   export's future from a Java thread, so each async export runs its body as a task on the core
//!   runtime ([`on_runtime`]) and only awaits the task's result.
//! - **Cancellation.** When Java cancels the `CompletableFuture` of an async call, UniFFI drops the
//!   Rust future; [`on_runtime`] then aborts the task, so nothing keeps running behind a cancelled
//!   or timed-out call. (Core operations whose effect must not be cut short, such as `close`,
//!   finish on their own.)
//! - **Blocking calls** ([`block_on`]) are used only where the core would otherwise make `send`
//!   wait for buffer room; they run on the calling Java thread, never on a runtime thread.

use std::future::Future;
use std::sync::Mutex;

use rapidmq_core::Runtime;

use crate::error::{NativeError, Result};

/// The core runtime of this process.
static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// Worker threads: enough to overlap network and decoding with the Java threads that call in,
/// without competing with them on small machines.
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().clamp(1, 4))
        .unwrap_or(2)
}

/// The core runtime of this process, created on first use.
pub(crate) fn runtime() -> Result<Runtime> {
    let mut current = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(runtime) = current.as_ref() {
        return Ok(runtime.clone());
    }
    let runtime = Runtime::new(worker_threads())?;
    *current = Some(runtime.clone());
    Ok(runtime)
}

/// Aborts a task when the future waiting for it is dropped (a cancelled Java future).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn runtime_ended(err: tokio::task::JoinError) -> NativeError {
    rapidmq_core::Error::Closed {
        message: format!("client runtime task ended: {err}"),
    }
    .into()
}

/// Runs `future` as a task on the core runtime and awaits its result from any executor; dropping
/// the returned future aborts the task.
pub(crate) async fn on_runtime<F, T>(runtime: &Runtime, future: F) -> Result<T>
where
    F: Future<Output = rapidmq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let task = runtime.handle().spawn(future);
    let _abort = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(result) => result.map_err(NativeError::from),
        Err(err) => Err(runtime_ended(err)),
    }
}

/// Blocks the calling (Java) thread on `future`, run as a task on the core runtime.
pub(crate) fn block_on<F, T>(runtime: &Runtime, future: F) -> Result<T>
where
    F: Future<Output = rapidmq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    runtime.block_on(future)?.map_err(NativeError::from)
}
