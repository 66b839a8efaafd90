"""The audit log through the admin API, against brokers started with ``--auth`` and connected as
the bootstrap admin (a cluster admin)."""

from __future__ import annotations

import pytest

import rapidmq
from test_tenants import admin_broker

PERMISSIONS = ["allow describe topic:orders.*"]


def test_admin_changes_are_audited_filtered_and_paged(start_broker) -> None:  # type: ignore[no-untyped-def]
    broker, token = admin_broker(start_broker)
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        me = admin.whoami()
        admin.create_role("orders-writer", PERMISSIONS)
        admin.create_role("orders-reader", PERMISSIONS)

        page = admin.list_audit_events(action_prefix="role.")
        assert len(page.events) == 2 and page.next_page_token is None, page
        event = page.events[0]
        assert event.action == "role.create"
        assert event.actor == f"{me.tenant}/{me.user}"
        assert (event.tenant, event.target) == ("default", "role:default/orders-writer")
        assert (event.outcome, event.transport) == ("ok", "grpc")
        assert event.count == 1 and event.ts_ms > 0 and event.id
        assert page.events[1].target == "role:default/orders-reader", "oldest first"

        # The same filters as an AuditQuery; keywords replace its fields.
        query = rapidmq.AuditQuery(action_prefix="role.", actor="default/nobody")
        assert admin.list_audit_events(query).events == []
        assert admin.list_audit_events(query, actor=event.actor).events == page.events
        assert admin.list_audit_events(query, actor=None, since_ms=event.ts_ms + 86_400_000).events == []

        first = admin.list_audit_events(action_prefix="role.create", limit=1)
        assert first.events == [event] and first.next_page_token
        following = admin.list_audit_events(
            action_prefix="role.create", limit=1, page_token=first.next_page_token
        )
        assert following.events == [page.events[1]]


@pytest.mark.asyncio
async def test_the_asyncio_admin_lists_audit_events(start_broker) -> None:  # type: ignore[no-untyped-def]
    broker, token = admin_broker(start_broker)
    async with await rapidmq.aio.Client.connect(broker.url, token=token) as client:
        admin = client.admin()
        await admin.create_role("orders-writer", PERMISSIONS)
        page = await admin.list_audit_events(rapidmq.AuditQuery(action_prefix="role."))
        assert [(e.action, e.target) for e in page.events] == [
            ("role.create", "role:default/orders-writer")
        ]


def test_tenant_changes_are_audited_with_their_actor(start_broker) -> None:  # type: ignore[no-untyped-def]
    broker, token = admin_broker(start_broker)
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        me = admin.whoami()
        admin.create_tenant("acme", rapidmq.TenantQuotas(max_topics=10))
        admin.delete_tenant("acme")
        page = admin.list_audit_events(action_prefix="tenant.")
        assert [(e.action, e.actor, e.target, e.outcome) for e in page.events] == [
            ("tenant.create", f"{me.tenant}/{me.user}", "tenant:acme", "ok"),
            ("tenant.delete", f"{me.tenant}/{me.user}", "tenant:acme", "ok"),
        ]
