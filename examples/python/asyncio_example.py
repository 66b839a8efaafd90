"""The asyncio API: produce and consume concurrently on one event loop.

    RAPIDMQ_URL=http://127.0.0.1:7420 python examples/python/asyncio_example.py [topic] [count]
"""

import asyncio
import os
import sys

from rapidmq import StartPosition, TopicAlreadyExistsError, aio


async def main(url: str, topic: str, count: int) -> None:
    async with aio.Client.connect(url) as client:
        try:
            await client.admin().create_topic(topic, partitions=2)
        except TopicAlreadyExistsError:
            pass

        async def produce() -> None:
            async with client.producer(topic) as producer:
                receipts = [await producer.send(f"event {i}") for i in range(count)]
                for receipt in receipts:
                    await receipt

        async def consume() -> int:
            seen = 0
            async with client.consumer(
                topic, "async-reader", start=StartPosition.EARLIEST
            ) as consumer:
                async for message in consumer:  # one at a time, as they come
                    consumer.ack(message)
                    seen += 1
                    if seen == count:
                        break
            return seen

        _, seen = await asyncio.wait_for(asyncio.gather(produce(), consume()), timeout=60)
        print(f"produced {count}, consumed {seen}")


if __name__ == "__main__":
    asyncio.run(
        main(
            os.environ.get("RAPIDMQ_URL", "http://127.0.0.1:7420"),
            sys.argv[1] if len(sys.argv) > 1 else "events",
            int(sys.argv[2]) if len(sys.argv) > 2 else 100,
        )
    )
