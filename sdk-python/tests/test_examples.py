"""The example scripts in examples/python run against a real broker."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"


def run(broker, script: str, *args: str) -> str:
    env = dict(os.environ, RAPIDMQ_URL=broker.url)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_producer_then_consumer_examples_move_messages(broker):
    out = run(broker, "producer.py", "orders", "10")
    assert out.count("stored at partition") == 10
    out = run(broker, "consumer.py", "orders", "10")
    assert "consumed 10; lag now 0" in out


def test_asyncio_example_produces_and_consumes(broker):
    assert "produced 50, consumed 50" in run(broker, "asyncio_example.py", "events", "50")


def test_queue_worker_example_retries_a_failed_job_and_finishes_all(broker):
    out = run(broker, "queue_worker.py", "jobs", "5")
    assert out.splitlines()[0] == "job 0 done (attempt 1)", "the priority job goes first"
    assert "job 1 failed on attempt 1" in out and "job 1 done (attempt 2)" in out
    assert out.count(" done (attempt") == 5
    assert "queue subscription workers: redeliveries=1" in out


@pytest.mark.parametrize("script", ["producer.py", "consumer.py", "asyncio_example.py", "queue_worker.py"])
def test_examples_have_usage_docstrings(script):
    assert (EXAMPLES / script).read_text().startswith('"""')
