"""Cluster administration through the core: a one-node cluster (``serve --node-id 1 --peers
1=127.0.0.1:PORT``) and a broker in single-node mode; partition placement (replicas, leaders,
the replication factor) on one node and on three, and replica moves on three; C24
cluster-failover with three nodes."""

from __future__ import annotations

import re
import threading

import pytest

import rapidmq
from conftest import GUARD, cluster_sockets, eventually, read_log, start_cluster


def free_port() -> int:
    """A free port for the cluster listener (bound, then released for the broker to take)."""
    with cluster_sockets(1)[0] as s:
        return int(s.getsockname()[1])


def test_a_one_node_cluster_reports_itself_refuses_bad_removals_and_rebalances_nothing(
    start_broker,
) -> None:
    port = free_port()
    broker = start_broker("--node-id", "1", "--peers", f"1=127.0.0.1:{port}")
    with rapidmq.Client(broker.url) as client:
        admin = client.admin()
        eventually("node 1 to lead", lambda: admin.cluster_status().leader_id == 1)
        status = admin.cluster_status()
        assert isinstance(status, rapidmq.ClusterStatus)
        assert (status.mode, status.node_id, status.membership) == ("cluster", 1, "voter")
        assert status.term >= 1
        # The id the founding node derived from its peers: 128 bits in hex.
        assert re.fullmatch("[0-9a-f]{32}", status.cluster_id), status
        assert [(n.id, n.role, n.cluster_addr) for n in status.nodes] == [
            (1, "voter", f"127.0.0.1:{port}")
        ]

        with pytest.raises(rapidmq.NodeNotFoundError) as unknown:
            admin.remove_node(9)
        assert unknown.value.code == 5006 and unknown.value.name == "NODE_NOT_FOUND"
        assert "node 9 is not a member" in str(unknown.value)

        with pytest.raises(rapidmq.InvalidArgumentError) as last:
            admin.remove_node(1)
        assert last.value.code == 1001 and "last voter" in str(last.value)
        assert admin.cluster_status().nodes[0].role == "voter"

        # The only voter leads every partition it hosts and has no other node to ask.
        rebalance = admin.rebalance_leaders()
        assert isinstance(rebalance, rapidmq.LeaderRebalance)
        assert (rebalance.transfers, rebalance.unreachable) == (0, [])


def test_a_single_node_broker_says_so(client: rapidmq.Client) -> None:
    admin = client.admin()
    status = admin.cluster_status()
    assert status.mode == "single-node"
    assert (status.leader_id, status.membership, status.nodes) == (None, "", [])
    assert (status.moving_partitions, status.cluster_id) == (0, "")
    with pytest.raises(rapidmq.InvalidArgumentError):
        admin.remove_node(1)
    with pytest.raises(rapidmq.InvalidArgumentError):
        admin.add_node(2, "127.0.0.1:7002")
    rebalance = admin.rebalance_leaders()
    assert (rebalance.transfers, rebalance.unreachable) == (0, [])
    with pytest.raises(rapidmq.InvalidArgumentError) as moved:
        admin.rebalance_replicas()
    assert moved.value.code == 1001


def test_a_single_node_broker_keeps_one_copy_and_names_no_replicas_or_leader(
    client: rapidmq.Client,
) -> None:
    admin = client.admin()
    info = admin.create_topic("one-copy", 2, replication_factor=1)
    # A single-node broker places nothing: no factor, no replicas, no partition group leader.
    assert info.config.replication_factor is None
    assert [(p.partition, p.replicas, p.leader) for p in info.partitions] == [
        (0, [], None),
        (1, [], None),
    ]
    described = admin.describe_topic("one-copy")
    assert described.config.replication_factor is None
    assert all(p.replicas == [] and p.leader is None for p in described.partitions)

    for rf, says in [(2, "replication needs cluster mode"), (0, "must be at least 1")]:
        with pytest.raises(rapidmq.InvalidTopicConfigError) as refused:
            admin.create_topic(f"copies-{rf}", 1, replication_factor=rf)
        assert refused.value.code == 2005 and not refused.value.retriable
        assert says in str(refused.value)
    assert [t.name for t in admin.list_topics()] == ["one-copy"]


def wait_for_three_voters(admin: rapidmq.Admin) -> None:
    """Until the node behind ``admin`` knows a metadata leader and three registered voters."""

    def formed() -> bool:
        status = admin.cluster_status()
        return (
            status.leader_id is not None
            and len(status.nodes) == 3
            and all(n.role == "voter" and n.grpc_addr for n in status.nodes)
        )

    eventually("a leader and three registered voters", formed)


def test_a_topic_replicated_three_times_describes_its_replicas_and_leaders_and_has_nothing_to_move(
    start_broker,
) -> None:
    nodes = start_cluster(start_broker, 3)
    with rapidmq.Client(nodes[0].url) as client:
        admin = client.admin()
        wait_for_three_voters(admin)
        created = admin.create_topic("placed", 3, replication_factor=3)
        assert created.config.replication_factor == 3

        def described() -> rapidmq.TopicInfo:
            return admin.describe_topic("placed")

        eventually(
            "a leader of every partition",
            lambda: all(p.leader is not None for p in described().partitions),
        )
        info = described()
        assert info.config.replication_factor == 3
        for p in info.partitions:
            assert sorted(p.replicas) == [1, 2, 3], p.replicas
            assert p.leader in p.replicas, (p.leader, p.replicas)
        # Each partition's preferred leader (its first replica) is a different node.
        assert sorted(p.replicas[0] for p in info.partitions) == [1, 2, 3]
        (listed,) = [t for t in admin.list_topics() if t.name == "placed"]
        assert [p.replicas for p in listed.partitions] == [p.replicas for p in info.partitions]

        with pytest.raises(rapidmq.InvalidTopicConfigError) as refused:
            admin.create_topic("too-many-copies", 1, replication_factor=4)
        assert "more than the cluster's 3 voting nodes" in str(refused.value)

        # Every node holds a replica of each partition and leads one: nothing to move, nothing
        # moving; and no node 9 to move replicas off.
        assert admin.rebalance_replicas(dry_run=True) == []
        assert admin.cluster_status().moving_partitions == 0
        with pytest.raises(rapidmq.NodeNotFoundError) as unknown:
            admin.rebalance_replicas(exclude=[9])
        assert unknown.value.code == 5006 and unknown.value.name == "NODE_NOT_FOUND"


@pytest.mark.asyncio
async def test_the_asyncio_admin_has_the_cluster_calls(broker) -> None:
    async with await rapidmq.aio.Client.connect(broker.url) as client:
        status = await client.admin().cluster_status()
        assert status.mode == "single-node"
        with pytest.raises(rapidmq.InvalidArgumentError):
            await client.admin().remove_node(9)
        rebalance = await client.admin().rebalance_leaders()
        assert (rebalance.transfers, rebalance.unreachable) == (0, [])
        with pytest.raises(rapidmq.InvalidArgumentError):
            await client.admin().rebalance_replicas(dry_run=True)


FAILOVER_MESSAGES = 300
FAILOVER_KEYS = 10
#: Receipts awaited together; the kill lands while one window is on the wire.
FAILOVER_WINDOW = 30


def test_a_producer_and_a_queue_consumer_through_node_1_carry_on_when_a_partition_leader_is_killed(
    start_broker,
) -> None:
    """C24 cluster-failover: three nodes, a topic of three partitions replicated three times
    (fsync), a client connected to node 1 only. A producer sends keyed messages (each
    partition's batches to its leader) and a queue consumer acks what it polls (one stream per
    node); a third of the way in, a node other than node 1 that leads a partition is killed
    (``kill -9``). Every send is appended (the core follows the new leader and retries
    idempotently), the consumer gets every message, and the log holds each once, each key's
    messages in send order."""
    nodes = start_cluster(start_broker, 3)
    with rapidmq.Client(nodes[0].url) as client:
        admin = client.admin()
        wait_for_three_voters(admin)
        topic = "failover"
        admin.create_topic(topic, 3, durability="fsync")

        def partitions() -> list:
            return admin.describe_topic(topic).partitions

        eventually(
            "a leader of every partition on three replicas",
            lambda: all(p.leader and len(p.replicas) == 3 for p in partitions()),
        )

        queue = client.queue_consumer(topic, "failover", start="earliest", commit_interval=0.02)
        seen = set()
        failures = []

        def consume() -> None:
            try:
                while len(seen) < FAILOVER_MESSAGES:
                    got = queue.poll(100, 30.0)
                    assert got, f"queue consumer stalled at {len(seen)}"
                    for d in got:
                        seen.add(int(d.value))
                        queue.ack(d)
                queue.flush()
            except BaseException as e:  # surfaced by the main thread
                failures.append(e)

        consumer = threading.Thread(target=consume)
        consumer.start()

        producer = client.producer(topic)
        receipts = {}
        victim = None
        for start in range(0, FAILOVER_MESSAGES, FAILOVER_WINDOW):
            window = [
                (i, producer.send(str(i), key=f"k{i % FAILOVER_KEYS}"))
                for i in range(start, min(start + FAILOVER_WINDOW, FAILOVER_MESSAGES))
            ]
            if victim is None and start >= FAILOVER_MESSAGES // 3:
                # A node other than node 1 that leads a partition, or node 2 if node 1 leads
                # them all: the scenario kills a node either way.
                victim = next((p.leader for p in partitions() if p.leader not in (None, 1)), 2)
                print(f"killing node {victim}")
                nodes[victim - 1].kill()
            for i, receipt in window:
                delivery = receipt.result()
                assert delivery.status == "appended", (i, delivery)
                receipts[i] = delivery
        producer.close()
        print("producer stats:", producer.stats())

        consumer.join(GUARD)
        assert not consumer.is_alive(), f"the queue consumer stalled at {len(seen)}"
        assert not failures, failures
        assert seen == set(range(FAILOVER_MESSAGES)), "the queue consumer got every message"
        print("queue consumer stats:", queue.stats())
        queue.close()

        # Node 1 is a replica of every partition: once it has applied every acked append it
        # serves the whole log, and a retried batch appended twice would show as more messages.
        eventually(
            "node 1 to serve every acked message",
            lambda: len(read_log(client, topic)) >= FAILOVER_MESSAGES,
        )
        log = read_log(client, topic)
        at = {}
        logged = set()
        last_of_key = {}
        for m in log:
            i = int(m.value)
            assert i not in logged, f"{i} is in the log twice (again at {m.partition}:{m.offset})"
            logged.add(i)
            key = m.key.decode()
            assert last_of_key.get(key, -1) < i, f"key {key}: {i} after {last_of_key[key]}"
            last_of_key[key] = i
            at[(m.partition, m.offset)] = i
        assert len(log) == FAILOVER_MESSAGES
        for i, delivery in receipts.items():
            assert at.get((delivery.partition, delivery.offset)) == i, (i, delivery)
