"""Tenants and their quotas through the admin API, against brokers started with ``--auth`` and
connected as the bootstrap admin (a cluster admin)."""

from __future__ import annotations

import pytest

import rapidmq
from conftest import unique_topic
from test_auth import generate_token


def admin_broker(start_broker):  # type: ignore[no-untyped-def]
    """A broker with ``--auth`` and a bootstrap token, and that token."""
    token = generate_token()
    return start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token}), token


def assert_all_set(info: rapidmq.TenantInfo) -> None:
    """Every quota of a tenant is reported: the values in effect."""
    for name in rapidmq.TenantQuotas.NAMES:
        assert getattr(info.quotas, name) is not None, (name, info)


def test_tenant_quotas_keep_none_and_zero_apart() -> None:
    quotas = rapidmq.TenantQuotas(max_topics=0, storage_bytes=1 << 30)
    assert quotas.max_topics == 0 and quotas.max_partitions is None
    assert quotas == rapidmq.TenantQuotas(storage_bytes=1 << 30, max_topics=0)
    assert quotas != rapidmq.TenantQuotas(storage_bytes=1 << 30)
    assert repr(quotas) == "TenantQuotas(storage_bytes=1073741824, max_topics=0)"
    assert rapidmq.TenantQuotas.NAMES[0] == "publish_bytes_per_sec"
    assert len(rapidmq.TenantQuotas.NAMES) == 7 and isinstance(rapidmq.TenantQuotas.NAMES, tuple)
    assert len({quotas, rapidmq.TenantQuotas(max_topics=0, storage_bytes=1 << 30)}) == 1


def test_tenants_and_their_quotas_are_managed_through_the_admin_api(start_broker) -> None:  # type: ignore[no-untyped-def]
    broker, token = admin_broker(start_broker)
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        admin.create_topic(unique_topic(), 3)

        # The broker's defaults, as a tenant created without quotas gets them.
        plain = admin.create_tenant("plain")
        assert_all_set(plain)
        defaults = plain.quotas

        quotas = rapidmq.TenantQuotas(max_topics=10, storage_bytes=1 << 30, max_connections=0)
        acme = admin.create_tenant("acme", quotas=quotas)
        assert acme.name == "acme" and acme.created_at_ms > 0
        assert_all_set(acme)
        assert acme.quotas.max_topics == 10
        assert acme.quotas.storage_bytes == 1 << 30
        assert acme.quotas.max_connections == 0, "0 is unlimited"
        assert acme.quotas.max_partitions == defaults.max_partitions, "None takes the default"

        with pytest.raises(rapidmq.TenantAlreadyExistsError) as err:
            admin.create_tenant("acme")
        assert err.value.code == 6011

        assert [t.name for t in admin.list_tenants()] == ["acme", "default", "plain"]

        described = admin.describe_tenant("acme")
        assert described.quotas == acme.quotas
        usage = described.usage
        assert (usage.topics, usage.partitions, usage.storage_bytes, usage.users) == (0, 0, 0, 0)
        home = admin.describe_tenant()
        assert home.name == "default" and home.created_at_ms == 0
        assert (home.usage.topics, home.usage.partitions) == (1, 3), home

        # One quota set (to 0, unlimited, which is not "unset"), one reset to the default.
        changed = admin.set_tenant_quotas(
            "acme", rapidmq.TenantQuotas(max_topics=0), reset=["storage_bytes"]
        )
        assert changed.quotas.max_topics == 0
        assert changed.quotas.storage_bytes == defaults.storage_bytes
        assert changed.quotas.max_connections == 0, "kept"
        assert admin.describe_tenant("acme").quotas == changed.quotas
        with pytest.raises(rapidmq.InvalidArgumentError):
            admin.set_tenant_quotas("acme", reset=["bogus"])

        admin.delete_tenant("acme")
        with pytest.raises(rapidmq.TenantNotFoundError) as err:
            admin.describe_tenant("acme")
        assert err.value.code == 6003
        with pytest.raises(rapidmq.TenantNotFoundError):
            admin.delete_tenant("acme")
        with pytest.raises(rapidmq.TenantNotFoundError):
            admin.set_tenant_quotas("acme", rapidmq.TenantQuotas(max_topics=1))
        with pytest.raises(rapidmq.PermissionDeniedError):
            admin.delete_tenant("default")


def test_a_cluster_admin_acts_inside_a_tenant_with_the_tenant_option(start_broker) -> None:  # type: ignore[no-untyped-def]
    broker, token = admin_broker(start_broker)
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        admin.create_tenant("acme")
        with rapidmq.Client(broker.url, token=token, tenant="acme") as inside:
            assert inside.config.tenant == "acme"
            inside.admin().create_topic("orders")
        assert admin.describe_tenant("acme").usage.topics == 1
        assert "orders" not in [t.name for t in admin.list_topics()]

        with pytest.raises(rapidmq.TenantNotFoundError):
            with rapidmq.Client(broker.url, token=token, tenant="no-such") as missing:
                missing.admin().list_topics()
        with pytest.raises(rapidmq.InvalidArgumentError):
            rapidmq.Client(broker.url, token=token, tenant="a/b")


@pytest.mark.asyncio
async def test_the_asyncio_admin_manages_tenants(start_broker) -> None:  # type: ignore[no-untyped-def]
    broker, token = admin_broker(start_broker)
    async with await rapidmq.aio.Client.connect(broker.url, token=token) as client:
        admin = client.admin()
        acme = await admin.create_tenant("acme", rapidmq.TenantQuotas(max_topics=5))
        assert acme.quotas.max_topics == 5
        assert [t.name for t in await admin.list_tenants()] == ["acme", "default"]
        changed = await admin.set_tenant_quotas("acme", rapidmq.TenantQuotas(max_partitions=0))
        assert (changed.quotas.max_topics, changed.quotas.max_partitions) == (5, 0)
        assert (await admin.describe_tenant("acme")).quotas == changed.quotas
        await admin.delete_tenant("acme")
        with pytest.raises(rapidmq.TenantNotFoundError):
            await admin.describe_tenant("acme")
