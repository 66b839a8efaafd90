"""Runtime bridging: the GIL is released while blocked, Ctrl-C interrupts, fork is detected."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time

import pytest

import rapidmq
from conftest import GUARD


def _wait_until_in(thread_id: int, function: str) -> None:
    """Waits until ``thread_id`` executes ``function`` (its innermost Python frame)."""
    deadline = time.monotonic() + GUARD
    while True:
        frame = sys._current_frames().get(thread_id)
        if frame is not None and frame.f_code.co_name == function:
            return
        assert time.monotonic() < deadline, f"thread never entered {function}"


def test_a_python_thread_makes_progress_while_another_blocks_in_poll(client, make_topic):
    topic = make_topic(1)
    consumer = client.consumer(topic, "gil")
    window = {}
    ticks = []
    done = threading.Event()
    main = threading.get_ident()

    def count():
        _wait_until_in(main, "poll")
        while not done.is_set():
            ticks.append(time.monotonic())  # pure Python: needs the GIL for every iteration

    counter = threading.Thread(target=count)
    counter.start()
    window["start"] = time.monotonic()
    assert consumer.poll(10, 1.0) == []  # empty topic: blocks for the full second
    window["end"] = time.monotonic()
    done.set()
    counter.join()
    middle = [t for t in ticks if window["start"] + 0.3 < t < window["end"] - 0.3]
    assert len(middle) > 1000, f"only {len(middle)} iterations while poll blocked"
    consumer.close()


def test_ctrl_c_interrupts_a_blocking_poll(client, make_topic):
    topic = make_topic(1)
    consumer = client.consumer(topic, "sigint")
    main = threading.get_ident()

    stop = threading.Event()
    sent = []

    def interrupt():
        _wait_until_in(main, "poll")
        while not stop.is_set() and len(sent) < 10:
            signal.pthread_kill(main, signal.SIGINT)
            sent.append(time.monotonic())
            stop.wait(2.0)

    def on_sigint(signum, frame):
        # CPython runs a pending signal handler at the next bytecode boundary of the main thread,
        # which can be inside a finaliser: one a garbage collection started, or one of an object
        # another thread let go of, run by pyo3 as the poll returns from native code. A
        # KeyboardInterrupt raised there is printed and dropped. This test is about `poll`: the
        # handler interrupts only `poll` (the frame the native call runs in) and lets a signal
        # that lands elsewhere pass, so the next one, two seconds later, is not lost the same way
        # (as a user would press Ctrl-C again) and none is raised after the poll has ended.
        if frame is not None and frame.f_code.co_name == "poll" and not stop.is_set():
            raise KeyboardInterrupt

    killer = threading.Thread(target=interrupt)
    previous = signal.signal(signal.SIGINT, on_sigint)
    gc.collect()
    gc.disable()
    try:
        started = time.monotonic()
        killer.start()
        with pytest.raises(KeyboardInterrupt):
            consumer.poll(10, 60.0)
        stop.set()
        assert time.monotonic() - started < 30, f"poll was not interrupted ({len(sent)} SIGINTs)"
    finally:
        stop.set()
        gc.enable()
        killer.join()
        signal.signal(signal.SIGINT, previous)
    # The consumer is still usable afterwards.
    assert consumer.poll(10, 0.0) == []
    consumer.close()


def test_objects_used_after_fork_raise_fork_error_and_the_child_can_connect_anew(broker, client):
    client.admin().status()  # the runtime and the connection exist before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            try:
                client.admin()
            except rapidmq.ForkError:
                with rapidmq.Client(broker.url) as fresh:
                    fresh.admin().status()
                code = 0
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    result = os.read(read, 1)
    _, status = os.waitpid(pid, 0)
    assert result == b"\x00", "the child did not see ForkError or could not connect anew"
    assert os.WEXITSTATUS(status) == 0
    client.admin().status()  # the parent is unaffected
