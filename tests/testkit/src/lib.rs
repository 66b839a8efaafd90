//! Starts real RapidMQ brokers for tests.
//!
//! A [`TestBroker`] runs the built `rapidmq` binary as a child process with `rapidmq serve` on
//! `127.0.0.1:0` for both listeners, in a temporary data directory, and waits until the broker
//! writes its ready file (see below) before returning: a readiness check every few milliseconds,
//! bounded by a deadline, never a fixed sleep.
//!
//! The same launch protocol serves the Python, Go and Java suites, so it is deliberately small:
//!
//! 1. run `rapidmq serve --data-dir DIR --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0
//!    --ready-file FILE`;
//! 2. wait for `FILE` to appear: the broker writes it atomically (write + rename) once both
//!    listeners are bound and storage is open, as JSON `{"grpc": "127.0.0.1:PORT", "http":
//!    "127.0.0.1:PORT", "pid": N}`;
//! 3. stop it with SIGTERM (graceful) or SIGKILL (crash tests); SIGSTOP/SIGCONT pause and
//!    resume it.
//!
//! The binary is found through `RAPIDMQ_BIN`, or else next to the test executable in Cargo's
//! target directory (`target/<profile>/rapidmq`), which `make test` builds first.
//!
//! [`history`] records what clients observe while brokers are crashed and checks it against the
//! durability contract (the chaos tests, `cli/tests/chaos.rs` and `cli/tests/link_faults.rs`);
//! [`proxy`] is a TCP proxy for one link whose faults (reset, blackhole, one-way cut, delay) a
//! test sets at run time.

pub mod history;
pub mod proxy;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a broker may take to become ready before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Options for starting a broker.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// Extra `RAPIDMQ_*` environment variables (e.g. short retention check intervals).
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments for `rapidmq serve`.
    pub args: Vec<String>,
}

/// A running broker owned by a test. Dropping it kills the process; the data directory lives as
/// long as the `TestBroker`, so [`TestBroker::restart`] and [`TestBroker::kill`] keep the data.
pub struct TestBroker {
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    log_path: PathBuf,
    options: BrokerOptions,
    grpc: String,
    http: String,
    paused: bool,
}

impl TestBroker {
    /// Starts a broker with default settings and waits for it to be ready.
    pub fn start() -> TestBroker {
        TestBroker::start_with(BrokerOptions::default())
    }

    /// Starts a broker with `options` and waits for it to be ready.
    pub fn start_with(options: BrokerOptions) -> TestBroker {
        let data_dir = tempfile::Builder::new()
            .prefix("rapidmq-test-")
            .tempdir()
            .expect("create a temporary data directory");
        let log_path = data_dir.path().with_extension("log");
        let mut broker = TestBroker {
            child: None,
            data_dir,
            log_path,
            options,
            grpc: String::new(),
            http: String::new(),
            paused: false,
        };
        broker.launch();
        broker
    }

    /// The gRPC endpoint as a URL, e.g. `http://127.0.0.1:40123`.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The gRPC listen address, e.g. `127.0.0.1:40123`.
    pub fn grpc_addr(&self) -> &str {
        &self.grpc
    }

    /// The HTTP base URL, e.g. `http://127.0.0.1:40124`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The broker's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The broker's log so far (stdout and stderr of every run).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The broker's process id while it runs (to send it signals, e.g. SIGHUP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: the process gets no chance to flush anything.
    pub fn kill(&mut self) {
        self.paused = false;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process is frozen, its sockets stay open and nothing answers (a node that
    /// hangs, as in a long GC pause or a stuck disk), until [`TestBroker::resume`].
    /// Returns once every thread of the process is stopped (the signal is delivered
    /// asynchronously).
    pub fn pause(&mut self) {
        self.signal("-STOP");
        self.paused = self.child.is_some();
        self.wait_for_threads(|stopped| stopped, "stop");
    }

    /// SIGCONT: a paused broker carries on where it stopped. Returns once no thread of the
    /// process is stopped any more.
    pub fn resume(&mut self) {
        self.signal("-CONT");
        self.paused = false;
        self.wait_for_threads(|stopped| !stopped, "resume");
    }

    /// Waits (bounded) until `state` holds for every thread of the process, by their state in
    /// `/proc` (`T`: stopped by a signal).
    fn wait_for_threads(&self, state: impl Fn(bool) -> bool, what: &str) {
        let Some(pid) = self.pid() else { return };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let threads = thread_states(pid);
            if !threads.is_empty() && threads.iter().all(|&s| state(s == 'T')) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "broker {pid} did not {what}: thread states {threads:?}"
            );
            wait_for_file_event(Path::new("/proc"));
        }
    }

    /// Whether the broker is paused by [`TestBroker::pause`].
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill {signal} {pid} failed: {status}");
        }
    }

    /// Graceful stop with SIGTERM; waits for the process to exit. A paused broker is resumed
    /// first, or it would never handle the signal.
    pub fn stop(&mut self) {
        if self.paused {
            self.resume();
        }
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Stops the broker gracefully and starts it again on the same data directory. The listen
    /// ports change, since the new process binds port 0 again.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts the broker again after [`TestBroker::kill`] or [`TestBroker::stop`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker is still running");
        self.launch();
    }

    fn launch(&mut self) {
        let ready_file = self.data_dir.path().with_extension("ready");
        let _ = fs::remove_file(&ready_file);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the broker log");
        let mut command = Command::new(broker_binary());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args([
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .arg("--ready-file")
            .arg(&ready_file)
            .args(&self.options.args)
            .env(
                "RAPIDMQ_LOG",
                std::env::var("RAPIDMQ_LOG").unwrap_or_else(|_| "rapidmq=debug,info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn the rapidmq binary");
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = loop {
            if let Ok(text) = fs::read_to_string(&ready_file) {
                break text;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "broker exited with {status} before it was ready; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "broker not ready after {READY_TIMEOUT:?}; log:\n{}",
                self.log()
            );
            wait_for_file_event(&ready_file);
        };
        let ready: serde_json::Value = serde_json::from_str(&ready).expect("ready file is JSON");
        self.grpc = ready["grpc"].as_str().expect("grpc address").to_string();
        self.http = ready["http"].as_str().expect("http address").to_string();
        self.child = Some(child);
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_file(self.data_dir.path().with_extension("ready"));
        if std::thread::panicking() {
            let log = self.log();
            // First what panicked in the broker, if anything: CI keeps only part of a long
            // failure's output, and a panic deep in a long log would be cut away.
            let panics = panic_reports(&log);
            if !panics.is_empty() {
                eprintln!(
                    "---- panics in the broker ({}) ----\n{panics}",
                    self.log_path.display()
                );
            }
            eprintln!("---- broker log ({}) ----\n{log}", self.log_path.display());
        }
        let _ = fs::remove_file(&self.log_path);
    }
}

/// Each panic a broker's `log` reports ("thread '…' panicked at …"), with the lines after it
/// that give the message and where it came from.
fn panic_reports(log: &str) -> String {
    const LINES_AFTER: usize = 6;
    let lines: Vec<&str> = log.lines().collect();
    let mut reports = String::new();
    for (at, line) in lines.iter().enumerate() {
        if line.contains(" panicked at ") {
            for line in &lines[at..lines.len().min(at + 1 + LINES_AFTER)] {
                reports.push_str(line);
                reports.push('\n');
            }
        }
    }
    reports
}

/// The `rapidmq` binary under test.
pub fn broker_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RAPIDMQ_BIN") {
        return PathBuf::from(path);
    }
    // Test executables live in target/<profile>/deps/; the binary in target/<profile>/.
    let exe = std::env::current_exe().expect("current test executable");
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("rapidmq"))
        .filter(|path| path.exists());
    candidate.unwrap_or_else(|| {
        panic!(
            "no rapidmq binary found next to {}; build it first (`cargo build -p rapidmq-cli`) \
             or point RAPIDMQ_BIN at it",
            exe.display()
        )
    })
}

/// The `rapidmq` CLI, isolated from the user running the tests: its named contexts are read
/// from an empty config directory, so a developer's current context (another server, TLS, a
/// token) cannot leak into a test's commands. Tests of contexts themselves set their own.
pub fn cli_command() -> Command {
    static CONFIG_HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let home = CONFIG_HOME.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("rapidmq-test-config-")
            .tempdir()
            .expect("a temporary config directory")
    });
    let mut command = Command::new(broker_binary());
    command
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("RAPIDMQ_CONTEXT");
    command
}

/// The state letter of each thread of process `pid` (from `/proc/PID/task/*/stat`).
pub fn thread_states(pid: u32) -> Vec<char> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("stat")).ok())
        // The command name in parentheses may hold spaces: the state follows its `)`.
        .filter_map(|stat| stat.rfind(')').and_then(|i| stat[i + 2..].chars().next()))
        .collect()
}

/// One step of the readiness wait: the loop in `launch` re-checks the ready file and the child
/// process after each step, so this bounds how often they are checked, not how long the test waits.
fn wait_for_file_event(_path: &Path) {
    std::thread::park_timeout(Duration::from_millis(5));
}

#[cfg(test)]
mod tests {
    use super::panic_reports;

    #[test]
    fn a_panic_in_a_broker_log_is_reported_with_its_message() {
        let log = "INFO ready\n\
                   thread 'tokio-runtime-worker' panicked at openraft/src/a.rs:1:2:\n\
                   the message\n\
                   INFO later\n";
        let reports = panic_reports(log);
        assert!(reports.starts_with("thread 'tokio-runtime-worker' panicked at"));
        assert!(reports.contains("the message"), "{reports}");
        assert!(!reports.contains("INFO ready"), "{reports}");
        assert_eq!(panic_reports("INFO ready\nINFO later\n"), "");
    }
}
