"""C23 auth-and-acls (docs/sdk-conformance.md) against brokers started with ``--auth``: an API
token authenticates every call and a wrong one fails at connect; a user and password log in and
the session is renewed before it expires; users, tokens, roles and bindings are managed through
the admin API and a revoked token is refused; a user's roles decide what it may do
(PERMISSION_DENIED). Tokens come from ``rapidmq token generate``, as in the other SDKs' suites."""

from __future__ import annotations

import subprocess
import time
from typing import Callable

import pytest

import rapidmq
from conftest import broker_binary, unique_topic

PASSWORD = "correct horse"


def generate_token() -> str:
    """A fresh ``rmq_`` token from ``rapidmq token generate``."""
    out = subprocess.run(
        [broker_binary(), "token", "generate"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def wait_until(what: str, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Polls ``condition`` until it holds; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def assert_unauthenticated(err: pytest.ExceptionInfo) -> None:
    assert type(err.value) is rapidmq.UnauthenticatedError, err.value
    assert err.value.code == 6001 and not err.value.retriable, err.value


def test_an_api_token_authenticates_every_call_and_a_wrong_one_fails_at_connect(start_broker):
    """C23: an API token on publish, consume and admin calls; wrong tokens fail at connect."""
    token = generate_token()
    broker = start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token})
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        me = admin.whoami()
        assert (me.tenant, me.user) == ("default", "admin")
        topic = unique_topic()
        admin.create_topic(topic, 1)
        with client.producer(topic) as producer:
            producer.send("hello").result()
        with client.consumer(topic, "auth", start="earliest") as consumer:
            assert [m.value for m in consumer.poll(1, 10.0)] == [b"hello"]
        assert [t.name for t in admin.list_topics()] == [topic]

    for wrong in (generate_token(), "not-a-token"):
        with pytest.raises(rapidmq.RapidMQError) as err:
            rapidmq.Client(broker.url, token=wrong)
        assert_unauthenticated(err)
    # Without credentials the connection opens, and the first call is refused.
    with rapidmq.Client(broker.url) as anonymous:
        with pytest.raises(rapidmq.RapidMQError) as err:
            anonymous.admin().list_topics()
        assert_unauthenticated(err)


def test_a_user_and_password_log_in_and_the_session_is_renewed_before_it_expires(start_broker):
    """C23: a login at connect, renewed at 80 % of a 1.5 s session; wrong logins fail at
    connect."""
    broker = start_broker(
        "--auth",
        env={
            "RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
            "RAPIDMQ_AUTH__SESSION_TTL_MS": "1500",
        },
    )
    with rapidmq.Client(broker.url, user="admin", password=PASSWORD) as client:
        admin = client.admin()
        assert admin.whoami().user == "admin"
        sessions = [t for t in admin.list_tokens("admin") if t.kind == "session"]
        assert len(sessions) == 1, sessions
        first = sessions[0]
        assert first.expires_at_ms is not None

        def renewed_and_first_expired() -> bool:
            tokens = admin.list_tokens("admin")
            renewed = any(t.kind == "session" and t.id != first.id for t in tokens)
            return renewed and time.time() * 1000 > first.expires_at_ms

        wait_until("the session is renewed and the first one has expired", renewed_and_first_expired)
        admin.list_topics()  # on the renewed session

    for user, password in (("admin", "wrong horse"), ("mallory", PASSWORD)):
        with pytest.raises(rapidmq.RapidMQError) as err:
            rapidmq.Client(broker.url, user=user, password=password)
        assert_unauthenticated(err)


def test_users_and_tokens_are_managed_and_a_revoked_token_is_refused(start_broker):
    """C23: users and API tokens through the admin API; a revoked token, a changed password and
    a deleted user are refused."""
    token = generate_token()
    broker = start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token})
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        alice = admin.create_user("alice", "s3cret")
        assert (alice.name, alice.has_password) == ("alice", True)
        assert not admin.create_user("ci-bot").has_password
        assert [u.name for u in admin.list_users()] == ["admin", "alice", "ci-bot"]
        with pytest.raises(rapidmq.UserAlreadyExistsError):
            admin.create_user("alice", "again")
        # A user may do only what a role bound to it allows (deny by default).
        for user in ("alice", "ci-bot"):
            admin.bind_role(user, "viewer")

        created = admin.create_token("ci-bot", "deploys", ttl=3600.0)
        assert created.token.startswith("rmq_") and created.info.user == "ci-bot"
        assert created.info.kind == "api" and created.info.description == "deploys"
        assert created.info.expires_at_ms is not None
        # rmq_<id>_<secret>: the id is base32, the secret base64url (it may hold "_").
        secret = created.token.split("_", 2)[2]
        assert secret not in repr(created) and secret not in repr(created.info)
        listed = admin.list_tokens("ci-bot")
        assert [t.id for t in listed] == [created.info.id]

        with rapidmq.Client(broker.url, token=created.token) as bot:
            assert bot.admin().whoami().user == "ci-bot"
            admin.revoke_token(created.info.id)
            with pytest.raises(rapidmq.RapidMQError) as err:
                bot.admin().list_topics()
            assert_unauthenticated(err)
        with pytest.raises(rapidmq.RapidMQError) as err:
            rapidmq.Client(broker.url, token=created.token)
        assert_unauthenticated(err)
        with pytest.raises(rapidmq.TokenNotFoundError):
            admin.revoke_tokens([created.info.id])

        admin.set_password("alice", "n3w")
        with pytest.raises(rapidmq.RapidMQError) as err:
            rapidmq.Client(broker.url, user="alice", password="s3cret")
        assert_unauthenticated(err)
        with rapidmq.Client(broker.url, user="alice", password="n3w") as as_alice:
            assert as_alice.admin().whoami().user == "alice"
        admin.delete_user("alice")
        with pytest.raises(rapidmq.UserNotFoundError):
            admin.delete_user("alice")
        with pytest.raises(rapidmq.RapidMQError) as err:
            rapidmq.Client(broker.url, user="alice", password="n3w")
        assert_unauthenticated(err)


@pytest.mark.asyncio
async def test_the_asyncio_admin_manages_users_and_tokens(start_broker):
    """C23 through ``rapidmq.aio``: the same calls as coroutines."""
    token = generate_token()
    broker = start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token})
    async with await rapidmq.aio.Client.connect(broker.url, token=token) as client:
        admin = client.admin()
        assert (await admin.whoami()).user == "admin"
        await admin.create_user("bob", "pw")
        await admin.set_password("bob", "pw2")
        created = await admin.create_token("bob", "ci")
        assert [t.id for t in await admin.list_tokens("bob")] == [created.info.id]
        await admin.revoke_tokens([created.info.id])
        assert [u.name for u in await admin.list_users()] == ["admin", "bob"]
        await admin.delete_user("bob")
        with pytest.raises(rapidmq.UserNotFoundError):
            await admin.delete_user("bob")


def test_a_revoked_token_ends_an_open_consumer(start_broker):
    """C23: revoking the token of a client with an open consumer ends its stream; the next
    ``poll`` raises UnauthenticatedError instead of reconnecting with the dead token."""
    token = generate_token()
    broker = start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token})
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        topic = unique_topic()
        admin.create_topic(topic, 1)
        created = admin.create_token(None, "consumer")
        with rapidmq.Client(broker.url, token=created.token) as bot:
            with bot.consumer(topic, "auth", start="earliest") as consumer:
                assert consumer.poll(1, 0.1) == []
                admin.revoke_token(created.info.id)
                deadline = time.monotonic() + 15.0
                with pytest.raises(rapidmq.RapidMQError) as err:
                    while time.monotonic() < deadline:
                        consumer.poll(1, 0.5)
                assert_unauthenticated(err)


def test_roles_and_bindings_are_managed_through_the_admin_api(start_broker):
    """C23: the four built-in roles, a custom role, bindings (idempotent, listed, removed with
    their role or user) and the errors of each."""
    token = generate_token()
    broker = start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token})
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        roles = {r.name: r for r in admin.list_roles()}
        assert sorted(roles) == ["admin", "consumer", "producer", "viewer"]
        assert all(r.builtin for r in roles.values())
        assert roles["producer"].permissions == ["allow publish,describe topic:*"]
        assert repr(roles["producer"]) == (
            "RoleInfo(name='producer', builtin=True, permissions=['allow publish,describe topic:*'])"
        )

        texts = ["allow publish,describe topic:orders.*", "deny publish topic:orders.audit"]
        writer = admin.create_role("orders-writer", texts)
        assert (writer.name, writer.builtin, writer.permissions) == ("orders-writer", False, texts)
        listed = {r.name: r for r in admin.list_roles()}
        assert listed["orders-writer"].permissions == texts
        for taken in ("orders-writer", "admin"):
            with pytest.raises(rapidmq.RoleAlreadyExistsError):
                admin.create_role(taken, texts)
        with pytest.raises(rapidmq.InvalidArgumentError, match="publsh"):
            admin.create_role("typo", ["allow publsh topic:orders"])

        [bootstrap] = admin.list_role_bindings("admin")
        assert (bootstrap.tenant, bootstrap.user, bootstrap.role, bootstrap.scope) == (
            "default",
            "admin",
            "admin",
            "cluster",
        )

        admin.create_user("ci-bot")
        bound = admin.bind_role("ci-bot", "orders-writer")
        assert (bound.user, bound.role, bound.scope) == ("ci-bot", "orders-writer", "tenant")
        admin.bind_role("ci-bot", "orders-writer")  # twice: not an error
        admin.bind_role("ci-bot", "viewer", scope="tenant")

        def roles_of(user: str) -> list:
            return sorted(b.role for b in admin.list_role_bindings(user))

        assert roles_of("ci-bot") == ["orders-writer", "viewer"]
        assert len(admin.list_role_bindings()) == 3
        with pytest.raises(rapidmq.RoleNotFoundError):
            admin.bind_role("ci-bot", "no-such-role")
        with pytest.raises(rapidmq.UserNotFoundError):
            admin.bind_role("nobody", "viewer")
        with pytest.raises(rapidmq.InvalidArgumentError, match="scope"):
            admin.bind_role("ci-bot", "viewer", scope="galaxy")

        admin.unbind_role("ci-bot", "viewer")
        with pytest.raises(rapidmq.RoleNotFoundError):
            admin.unbind_role("ci-bot", "viewer")
        with pytest.raises(rapidmq.InvalidArgumentError):
            admin.delete_role("admin")
        admin.delete_role("orders-writer")
        assert roles_of("ci-bot") == []
        with pytest.raises(rapidmq.RoleNotFoundError):
            admin.delete_role("orders-writer")

        admin.bind_role("ci-bot", "producer")
        admin.delete_user("ci-bot")
        assert all(b.user != "ci-bot" for b in admin.list_role_bindings())


def test_a_user_bound_to_consumer_can_consume_and_is_denied_publishing(start_broker):
    """C23, PERMISSION_DENIED: a user with the built-in ``consumer`` role reads a topic, and
    its publishes and role administration are refused with PermissionDeniedError."""
    token = generate_token()
    broker = start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token})
    with rapidmq.Client(broker.url, token=token) as client:
        admin = client.admin()
        topic = unique_topic()
        admin.create_topic(topic, 1)
        with client.producer(topic) as producer:
            producer.send("order-1").result()
        admin.create_user("reader", "s3cret")
        admin.bind_role("reader", "consumer")

        with rapidmq.Client(broker.url, user="reader", password="s3cret") as reader:
            with pytest.raises(rapidmq.PermissionDeniedError) as err:
                with reader.producer(topic) as producer:
                    producer.send("forged").result()
            assert err.value.code == 6002 and not err.value.retriable
            assert topic in str(err.value)

            with reader.consumer(topic, "billing", start="earliest") as consumer:
                assert [m.value for m in consumer.poll(1, 10.0)] == [b"order-1"]

            with pytest.raises(rapidmq.PermissionDeniedError):
                reader.admin().create_role("mine", ["allow all topic:*"])
            with pytest.raises(rapidmq.PermissionDeniedError):
                reader.admin().list_roles()


@pytest.mark.asyncio
async def test_the_asyncio_admin_manages_roles_and_bindings(start_broker):
    """C23 through ``rapidmq.aio``: the role calls as coroutines."""
    token = generate_token()
    broker = start_broker("--auth", env={"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN": token})
    async with await rapidmq.aio.Client.connect(broker.url, token=token) as client:
        admin = client.admin()
        assert sorted(r.name for r in await admin.list_roles()) == [
            "admin",
            "consumer",
            "producer",
            "viewer",
        ]
        role = await admin.create_role("auditor", ["allow describe tenant"])
        assert role.permissions == ["allow describe tenant"]
        await admin.create_user("eve")
        binding = await admin.bind_role("eve", "auditor")
        assert (binding.user, binding.role, binding.scope) == ("eve", "auditor", "tenant")
        assert [b.role for b in await admin.list_role_bindings("eve")] == ["auditor"]
        await admin.unbind_role("eve", "auditor")
        assert await admin.list_role_bindings("eve") == []
        await admin.delete_role("auditor")
        with pytest.raises(rapidmq.RoleNotFoundError):
            await admin.delete_role("auditor")
