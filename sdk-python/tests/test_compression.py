"""Batch compression (conformance C29) against a real broker: with ``compression="lz4"`` and
``"zstd"`` a batch of JSON-like messages, an empty value and non-UTF-8 bytes reads back exactly
as sent, and the topic stores far fewer bytes than the same messages sent plain; an unknown
codec is ``InvalidArgumentError``."""

from __future__ import annotations

import pytest

import rapidmq
from rapidmq import aio
from conftest import read_log, unique_topic


def messages() -> list[rapidmq.Message]:
    out = [
        rapidmq.Message(
            value=f'{{"order_id":{1000 + n},"status":"shipped","customer":"c-{n % 7}"}}'.encode(),
            key=f"k-{n % 5}".encode(),
            headers=[("n", str(n).encode())],
        )
        for n in range(200)
    ]
    return out + [rapidmq.Message(value=b""), rapidmq.Message(value=b"\x00\xff\xfe\x80")]


def test_compressed_batches_read_back_exactly_and_store_fewer_bytes(client, make_topic):
    assert rapidmq.ProducerConfig().compression == "none"
    stored = {}
    for codec in ("none", "lz4", "zstd"):
        topic = make_topic(1)
        with client.producer(topic, compression=codec, linger=60.0) as producer:
            receipts = [producer.send(m) for m in messages()]
            producer.flush()
            offsets = [r.result().offset for r in receipts]
        assert offsets == list(range(len(receipts))), codec
        log = read_log(client, topic)
        sent = messages()
        assert len(log) == len(sent), codec
        for index, (got, want) in enumerate(zip(log, sent)):
            assert got.offset == index, codec
            assert got.key == want.key, (codec, index)
            assert got.value == want.value, (codec, index)
            assert list(got.headers) == list(want.headers or []), (codec, index)
        stored[codec] = sum(p.bytes for p in client.admin().describe_topic(topic).partitions)
    for codec in ("lz4", "zstd"):
        assert stored[codec] * 10 < stored["none"] * 7, stored


def test_an_unknown_compression_is_invalid_argument(client, make_topic):
    with pytest.raises(rapidmq.InvalidArgumentError, match="gzip"):
        client.producer(make_topic(1), compression="gzip")


@pytest.mark.asyncio
async def test_asyncio_producers_compress_too(broker):
    async with aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        await client.admin().create_topic(topic, 1)
        async with client.producer(topic, compression="zstd", linger=60.0) as producer:
            receipts = [await producer.send(m) for m in messages()]
            await producer.flush()
            offsets = [(await r).offset for r in receipts]
        assert offsets == list(range(len(receipts)))
        info = await client.admin().describe_topic(topic)
        assert info.partitions[0].bytes * 2 < sum(len(m.value) for m in messages())
        fetched = await client.fetch(topic, 0, 0, 1000)
        assert [m.value for m in fetched.messages] == [m.value for m in messages()]
