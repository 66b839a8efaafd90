//! The explicit runtime every core task runs on.
//!
//! The core never looks for an ambient tokio runtime. A binding either lets the core create a
//! multi-thread runtime ([`Runtime::new`]) or hands it the handle of one it already owns
//! ([`Runtime::from_handle`], what `sdk-rust` does with the caller's runtime). Every background task
//! (producer owner, consumer session) is spawned on this handle, and every public async operation
//! runs its body there too ([`Runtime::run`]), so callers may await core futures from any executor
//! (a Python event loop thread, a Java carrier thread, a blocking `block_on`).

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::error::{Error, Result};

/// A handle to the tokio runtime the core spawns on. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    handle: Handle,
    _owned: Option<Arc<OwnedRuntime>>,
}

/// A runtime the core created; shut down in the background when the last [`Runtime`] goes, so
/// dropping it from inside an async context does not panic, or earlier by [`Runtime::shutdown`].
struct OwnedRuntime(std::sync::Mutex<Option<tokio::runtime::Runtime>>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        let rt = self.0.get_mut().ok().and_then(Option::take);
        if let Some(rt) = rt {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("owned", &self._owned.is_some())
            .finish()
    }
}

/// Blocks SIGPIPE on a core thread. A socket write to a broker that just went away raises
/// SIGPIPE on the writing thread; Rust programs ignore it, but a host process need not (a Go
/// program calling through the C ABI forwards it from non-Go threads to the default action,
/// which ends the process). Blocked here, the write fails with `EPIPE` and the connection is
/// handled like any broken one.
fn ignore_sigpipe_on_this_thread() {
    #[cfg(unix)]
    // SAFETY: plain libc calls on a local, zero-initialised signal set, affecting only the
    // calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

impl Runtime {
    /// Creates a multi-thread runtime owned by the core with `worker_threads` workers (at least 1).
    pub fn new(worker_threads: usize) -> Result<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("rapidmq-core")
            .on_thread_start(ignore_sigpipe_on_this_thread)
            .enable_all()
            .build()
            .map_err(|e| Error::invalid(format!("cannot start the client runtime: {e}")))?;
        Ok(Runtime {
            handle: rt.handle().clone(),
            _owned: Some(Arc::new(OwnedRuntime(std::sync::Mutex::new(Some(rt))))),
        })
    }

    /// Uses a runtime the caller owns. It must have the time and I/O drivers enabled and must
    /// outlive every client built on it.
    pub fn from_handle(handle: Handle) -> Runtime {
        Runtime {
            handle,
            _owned: None,
        }
    }

    /// Stops a runtime the core created: cancels its tasks and waits up to `timeout` for its
    /// threads to finish. Bindings call it before their host process tears down (Python's
    /// `atexit`), so no runtime thread touches the host after that. A no-op for a runtime the
    /// caller owns. Must not be called from inside an async context.
    pub fn shutdown(&self, timeout: std::time::Duration) {
        let rt = self
            ._owned
            .as_ref()
            .and_then(|owned| owned.0.lock().ok()?.take());
        if let Some(rt) = rt {
            rt.shutdown_timeout(timeout);
        }
    }

    /// The tokio handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Blocks the current (non-async) thread on `future`, running it on this runtime. For sync
    /// bindings; panics if called from inside an async context, like tokio's `block_on`.
    pub fn block_on<F>(&self, future: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.block_on(self.run(future))
    }

    /// Runs `future` as a task on this runtime and returns a future of its output that may be
    /// awaited from any executor.
    pub async fn run<F>(&self, future: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle
            .spawn(future)
            .await
            .map_err(|e| Error::closed(format!("client runtime task ended: {e}")))
    }

    /// Like [`Runtime::run`], but dropping the returned future aborts the task, so a caller that
    /// gives up (a timeout, a cancelled coroutine) does not leave work running behind it.
    pub(crate) async fn run_abortable<F>(&self, future: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        struct AbortOnDrop(tokio::task::AbortHandle);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let task = self.handle.spawn(future);
        let _abort = AbortOnDrop(task.abort_handle());
        task.await
            .map_err(|e| Error::closed(format!("client runtime task ended: {e}")))
    }

    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn core_threads_block_sigpipe() {
        fn sigpipe_blocked() -> bool {
            // SAFETY: reads the calling thread's signal mask into a local set.
            unsafe {
                let mut mask: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
                libc::sigismember(&mask, libc::SIGPIPE) == 1
            }
        }
        let rt = Runtime::new(1).expect("runtime");
        let worker = rt.block_on(async { sigpipe_blocked() }).expect("ran");
        let blocking = rt
            .block_on(async {
                tokio::task::spawn_blocking(sigpipe_blocked)
                    .await
                    .expect("blocking task")
            })
            .expect("ran");
        assert!(
            worker && blocking,
            "worker {worker}, blocking pool {blocking}"
        );
        assert!(!sigpipe_blocked(), "the caller's own thread is left alone");
    }

    #[test]
    fn owned_runtime_runs_futures_from_a_plain_thread() {
        let rt = Runtime::new(1).expect("runtime");
        let out = rt
            .block_on(async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                7
            })
            .expect("ran");
        assert_eq!(out, 7);
    }

    #[test]
    fn futures_of_an_owned_runtime_can_be_awaited_on_another_executor() {
        let rt = Runtime::new(1).expect("runtime");
        let out = futures::executor::block_on(rt.run(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            "done"
        }))
        .expect("ran");
        assert_eq!(out, "done");
    }
}
