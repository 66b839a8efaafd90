"""Cluster administration through the core: a one-node cluster (``serve --node-id 1 --peers
1=127.0.0.1:PORT``) and a broker in single-node mode."""

from __future__ import annotations

import socket

import pytest

import rapidmq
from conftest import eventually


def free_port() -> int:
    """A free port for the cluster listener (bound, then released for the broker to take)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    with pytest.raises(rapidmq.InvalidArgumentError):
        admin.remove_node(1)
    with pytest.raises(rapidmq.InvalidArgumentError):
        admin.add_node(2, "127.0.0.1:7002")
    rebalance = admin.rebalance_leaders()
    assert (rebalance.transfers, rebalance.unreachable) == (0, [])


@pytest.mark.asyncio
async def test_the_asyncio_admin_has_the_cluster_calls(broker) -> None:
    async with await rapidmq.aio.Client.connect(broker.url) as client:
        status = await client.admin().cluster_status()
        assert status.mode == "single-node"
        with pytest.raises(rapidmq.InvalidArgumentError):
            await client.admin().remove_node(9)
        rebalance = await client.admin().rebalance_leaders()
        assert (rebalance.transfers, rebalance.unreachable) == (0, [])
