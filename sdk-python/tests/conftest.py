"""A real broker per test, started with the shared launch protocol of ``tests/testkit``:

1. ``rapidmq serve --data-dir DIR --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0
   --ready-file FILE``;
2. wait for FILE (written atomically once both listeners are bound and storage is open), JSON
   ``{"grpc": "127.0.0.1:PORT", "http": "127.0.0.1:PORT", "pid": N}``;
3. stop with SIGTERM (graceful) or SIGKILL (crash tests).

The binary comes from ``RAPIDMQ_BIN``. Each broker gets its own temporary data directory and log
file; the log is printed when a test fails. Waiting for readiness watches the ready file and the
process, bounded by ``READY_TIMEOUT``: no sleeps decide anything.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterator, Mapping, Optional, Sequence

import pytest

import rapidmq

READY_TIMEOUT = 60.0
#: Upper bound for anything a test waits on; reaching it fails the test (a hang guard only).
GUARD = 60.0


def broker_binary() -> str:
    path = os.environ.get("RAPIDMQ_BIN")
    if not path:
        raise RuntimeError(
            "RAPIDMQ_BIN must point at the rapidmq binary (cargo build -p rapidmq-cli)"
        )
    return path


class Broker:
    """A running broker owned by a test; the data directory survives restarts."""

    def __init__(
        self,
        tmp: pathlib.Path,
        args: Sequence[str] = (),
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.args = list(args)  # extra ``rapidmq serve`` arguments (TLS settings, --auth)
        self.env = dict(env or {})  # extra environment (the bootstrap admin's credentials)
        self.data_dir = tmp / "data"
        self.ready_file = tmp / "ready.json"
        self.log_path = tmp / "broker.log"
        self.process: Optional[subprocess.Popen] = None
        self.grpc = ""
        self.launch()

    @property
    def url(self) -> str:
        """The gRPC endpoint, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.grpc}"

    def launch(self) -> None:
        assert self.process is None, "the broker is still running"
        if self.ready_file.exists():
            self.ready_file.unlink()
        env = dict(os.environ)
        env.update(self.env)
        env.setdefault("RAPIDMQ_LOG", "rapidmq=debug,info")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    broker_binary(),
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--grpc-listen",
                    "127.0.0.1:0",
                    "--http-listen",
                    "127.0.0.1:0",
                    "--ready-file",
                    str(self.ready_file),
                    *self.args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.ready_file.exists():
                try:
                    ready = json.loads(self.ready_file.read_text())
                    break
                except ValueError:
                    pass  # never partial (written with rename), but be safe
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(f"broker exited with {code} before ready; log:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"broker not ready after {READY_TIMEOUT}s; log:\n{self.log()}")
            # One step of the readiness wait (re-checks file and process), not a synchronisation.
            self.process_wait_step()
        self.grpc = ready["grpc"]

    def process_wait_step(self) -> None:
        try:
            assert self.process is not None
            self.process.wait(timeout=0.005)
        except subprocess.TimeoutExpired:
            pass

    def kill(self) -> None:
        """``kill -9``."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait()
            self.process = None

    def crash_and_restart(self) -> None:
        self.kill()
        self.launch()

    def restart(self) -> None:
        self.stop()
        self.launch()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture
def broker(request) -> Iterator[Broker]:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(prefix="rapidmq-py-test-") as tmp:
        b = Broker(pathlib.Path(tmp))
        try:
            yield b
        finally:
            b.kill()
            failed = getattr(request.node, "rep_call", None)
            if failed is not None and failed.failed:
                print(f"---- broker log ({b.log_path}) ----\n{b.log()}")


@pytest.fixture
def start_broker(request):  # type: ignore[no-untyped-def]
    """Starts brokers with extra ``rapidmq serve`` arguments and environment:
    ``start_broker(*args, env={...})``."""
    started = []
    with tempfile.TemporaryDirectory(prefix="rapidmq-py-test-") as tmp:

        def start(*args: str, env: Optional[Mapping[str, str]] = None) -> Broker:
            dir = pathlib.Path(tmp) / str(len(started))
            dir.mkdir()
            b = Broker(dir, args, env)
            started.append(b)
            return b

        try:
            yield start
        finally:
            failed = getattr(request.node, "rep_call", None)
            for b in started:
                b.kill()
                if failed is not None and failed.failed:
                    print(f"---- broker log ({b.log_path}) ----\n{b.log()}")


def cluster_sockets(count: int) -> list[socket.socket]:
    """``count`` sockets bound to free ports for cluster listeners, for the caller to close just
    before the brokers start. The ports are below the kernel's ephemeral range (32768-60999 on
    Linux): brokers bind their gRPC and HTTP listeners to port 0, which the kernel takes from that
    range, so a cluster port released there could go to another broker's listener first."""
    low, span = 20000, 12000
    next_port = random.randrange(span)
    sockets: list[socket.socket] = []
    for _ in range(span):
        if len(sockets) == count:
            break
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", low + next_port % span))
            sockets.append(s)
        except OSError:
            s.close()
        next_port += 7919
    if len(sockets) < count:
        raise RuntimeError("no free ports below the ephemeral range")
    return sockets


def start_cluster(start_broker, count: int):  # type: ignore[no-untyped-def]
    """``count`` cluster-mode nodes (ids ``1..count``, every one a peer of the others) started
    with the ``start_broker`` fixture. The cluster ports are bound and released first, so every
    node is told every peer's address before any node starts."""
    sockets = cluster_sockets(count)
    try:
        peers = ",".join(
            f"{id}=127.0.0.1:{s.getsockname()[1]}" for id, s in enumerate(sockets, start=1)
        )
    finally:
        for s in sockets:
            s.close()
    return [start_broker("--node-id", str(id), "--peers", peers) for id in range(1, count + 1)]


@pytest.fixture
def client(broker: Broker) -> Iterator[rapidmq.Client]:
    with rapidmq.Client(broker.url) as c:
        yield c


_names = itertools.count()


def unique_topic() -> str:
    return f"t{os.getpid()}-{next(_names)}"


@pytest.fixture
def make_topic(client: rapidmq.Client):  # type: ignore[no-untyped-def]
    """Creates a uniquely named topic: ``make_topic(partitions, **settings)``."""

    def make(partitions: int = 1, **settings) -> str:  # type: ignore[no-untyped-def]
        name = unique_topic()
        client.admin().create_topic(name, partitions, **settings)
        return name

    return make


def publish_values(producer: rapidmq.Producer, n: int):  # type: ignore[no-untyped-def]
    """Sends ``"0"`` .. ``str(n-1)`` and returns the deliveries."""
    receipts = [producer.send(str(i)) for i in range(n)]
    return [r.result() for r in receipts]


def read_log(client: rapidmq.Client, topic: str):  # type: ignore[no-untyped-def]
    """Every message of every partition, read back with Fetch."""
    info = client.admin().describe_topic(topic)
    out = []
    for p in info.partitions:
        offset = p.log_start_offset
        while offset < p.high_watermark:
            fetched = client.fetch(topic, p.partition, offset, 1000)
            assert fetched.messages, "fetch made progress"
            offset = fetched.messages[-1].offset + 1
            out.extend(fetched.messages)
    return out


def eventually(what: str, condition) -> None:  # type: ignore[no-untyped-def]
    """Re-checks ``condition`` (every 20 ms, bounded by ``GUARD``) until it holds: for state the
    broker applies asynchronously (acks, dead letters). Each check observes; none decides by
    elapsed time."""
    import threading

    deadline = time.monotonic() + GUARD
    tick = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        tick.wait(0.02)
