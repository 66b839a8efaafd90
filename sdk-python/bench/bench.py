"""Python SDK throughput against the Rust SDK, in the same run, on one broker.

    RAPIDMQ_BIN=/path/to/rapidmq sdk-python/.venv/bin/python sdk-python/bench/bench.py \
        [--count 200000] [--size 100] [--batch 1000] [--rust /path/to/rust-producer]
    sdk-python/.venv/bin/python sdk-python/bench/bench.py --endpoint URL [--count N] [--size B] \
        [--batch N]

Starts a broker with the shared launch protocol (tests/conftest.py), or uses the one at
``--endpoint`` (scripts/bench-sdks.sh, which runs every SDK against one broker), then measures on
fresh
1-partition topics with default producer settings (linger 5 ms, 1000-message batches, fsync):
- Python producer: `send` of COUNT SIZE-byte messages, then every receipt's result;
- with `--batch N`, the Python producer through `send_batch` in chunks of N messages, then every
  receipt's result;
- Rust producer (sdk-rust, built from bench/rust-producer in release) the same workload;
- Python consumer: `poll(1000)` + `ack` of the Python producer's COUNT messages.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import rapidmq  # noqa: E402
from conftest import Broker  # noqa: E402


def python_producer(client: rapidmq.Client, topic: str, count: int, size: int) -> float:
    payload = b"x" * size
    with client.producer(topic) as producer:
        started = time.perf_counter()
        receipts = [producer.send(payload) for _ in range(count)]
        for receipt in receipts:
            receipt.result()
        elapsed = time.perf_counter() - started
    return count / elapsed


def python_batch_producer(
    client: rapidmq.Client, topic: str, count: int, size: int, batch: int
) -> float:
    chunk = [b"x" * size] * batch
    with client.producer(topic) as producer:
        started = time.perf_counter()
        receipts = []
        for sent in range(0, count, batch):
            receipts += producer.send_batch(chunk[: count - sent])
        for receipt in receipts:
            receipt.result()
        elapsed = time.perf_counter() - started
    return count / elapsed


def python_consumer(client: rapidmq.Client, topic: str, count: int) -> float:
    with client.consumer(topic, "bench", start="earliest") as consumer:
        started = time.perf_counter()
        seen = 0
        while seen < count:
            messages = consumer.poll(1000, 10.0)
            if not messages:
                raise RuntimeError(f"consumer stalled at {seen}")
            for m in messages:
                consumer.ack(m)
            seen += len(messages)
        elapsed = time.perf_counter() - started
    return count / elapsed


def rust_producer(binary: str, url: str, topic: str, count: int, size: int) -> float:
    out = subprocess.run(
        [binary, url, topic, str(count), str(size)], check=True, capture_output=True, text=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["msgs_per_s"])


def against(endpoint: str, count: int, size: int, batch: int | None) -> None:
    """The Python rows of scripts/bench-sdks.sh: one line per phase, `python <phase>: N msgs/s`."""
    suffix = int(time.time() * 1000)
    with rapidmq.Client(endpoint) as client:
        admin = client.admin()
        warmup, topic, batched = (f"py-{name}-{suffix}" for name in ("warmup", "bench", "batch"))
        for name in (warmup, topic, batched):
            admin.create_topic(name, 1)
        python_producer(client, warmup, max(1, count // 10), size)
        print(f"python publish: {python_producer(client, topic, count, size):.0f} msgs/s", flush=True)
        print(f"python consume: {python_consumer(client, topic, count):.0f} msgs/s", flush=True)
        if batch:
            rate = python_batch_producer(client, batched, count, size, batch)
            print(f"python batch publish: {rate:.0f} msgs/s (send_batch of {batch})", flush=True)
        for name in (warmup, topic, batched):
            admin.delete_topic(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--batch", type=int, help="also publish through send_batch, N at a time")
    parser.add_argument("--rust", help="the rust-producer binary (cargo build --release)")
    parser.add_argument("--endpoint", help="measure against this broker; start none")
    args = parser.parse_args()
    if args.endpoint:
        against(args.endpoint, args.count, args.size, args.batch)
        return
    with tempfile.TemporaryDirectory(prefix="rapidmq-py-bench-") as tmp:
        broker = Broker(pathlib.Path(tmp))
        try:
            with rapidmq.Client(broker.url) as client:
                admin = client.admin()
                rows = []
                for topic in ("py-warmup", "py", "py-batch", "rust"):
                    admin.create_topic(topic, 1)
                python_producer(client, "py-warmup", args.count // 10, args.size)
                py = python_producer(client, "py", args.count, args.size)
                rows.append(("python producer", py))
                if args.batch:
                    batched = python_batch_producer(
                        client, "py-batch", args.count, args.size, args.batch
                    )
                    rows.append((f"python send_batch({args.batch})", batched))
                if args.rust:
                    rust = rust_producer(args.rust, broker.url, "rust", args.count, args.size)
                    rows.append(("rust producer", rust))
                    rows.append(("python / rust", py / rust))
                    if args.batch:
                        rows.append(("batch / rust", batched / rust))
                rows.append(("python consumer", python_consumer(client, "py", args.count)))
        finally:
            broker.kill()
    print(f"{args.count} messages of {args.size} B, 1 partition, default producer settings")
    for name, value in rows:
        text = f"{value:.0%}" if name.endswith("/ rust") else f"{value:,.0f} msgs/s"
        print(f"  {name:<24} {text}")


if __name__ == "__main__":
    main()
