"""Schemathesis hooks for tests/e2e/schemathesis.sh.

`positive_data_accepted_or_refused_by_state` stands in for the built-in
`positive_data_acceptance` check (the script excludes that one): a request the document allows
must be accepted, unless the broker refused it for a reason that depends on state the document
cannot describe, named by its stable error code. Each such code is listed in docs/rest.md under
"What the broker accepts"; any other refusal of a schema-valid request still fails the run.
"""

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

# Refusals that depend on the broker's state or clock, not on the request's shape.
STATE_CODES = {
    # A fetch or commit past the end of a partition's log.
    "OFFSET_OUT_OF_RANGE",
    # A message larger than the `max_message_bytes` of the topic it goes to.
    "MESSAGE_TOO_LARGE",
    # `deliver_at_ms` beyond now + `limits.max_delay_ms`.
    "DELIVER_AT_OUT_OF_RANGE",
}


def _refused_by_state(case, problem):
    name = problem.get("name")
    if name in STATE_CODES:
        return True
    # A dead-letter `page_token` the broker did not issue for that topic: tokens are opaque, so
    # the document can give only their alphabet, not which ones are valid.
    query = case.query if isinstance(case.query, dict) else {}
    if (
        name == "INVALID_ARGUMENT"
        and case.operation.label == "GET /v1/topics/{topic}/dead-letters"
        and query.get("page_token")
    ):
        return True
    # A role permission whose pattern does not fit its resource (empty for a topic or a
    # subscription, one without `topic/` for a subscription, any for the tenant or the cluster):
    # the document describes each field, not how they combine.
    if (
        name == "INVALID_ARGUMENT"
        and case.operation.label == "POST /v1/roles"
        and "pattern" in str(problem.get("detail", ""))
    ):
        return True
    # `durability` sent to alter a memory topic, which has none.
    detail = str(problem.get("detail", ""))
    path = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    if (
        case.operation.label == "DELETE /v1/cluster/nodes/{id}"
        and not str(path.get("id", "")).isdigit()
    ):
        # Not schema-valid (`id` is an integer): the stateful phase links `node_id` of
        # `GET /v1/status`, a string ("single" on a single-node broker), into this path.
        return True
    if (
        name == "INVALID_ARGUMENT"
        and case.operation.label
        in (
            "POST /v1/cluster/nodes",
            "DELETE /v1/cluster/nodes/{id}",
            "POST /v1/cluster/rebalance-replicas",
        )
        and "not in cluster mode" in detail
    ):
        return True
    body = case.body if isinstance(case.body, dict) else {}
    config = body.get("config") if isinstance(body.get("config"), dict) else {}
    if (
        name == "INVALID_TOPIC_CONFIG"
        and case.operation.label == "POST /v1/topics"
        and (config.get("replication_factor") or 0) > 1
        and "replication" in detail
    ):
        return True
    return (
        name == "INVALID_TOPIC_CONFIG"
        and case.operation.label == "PATCH /v1/topics/{topic}"
        and (body.get("durability") is not None or body.get("replication_factor") is not None)
    )


@schemathesis.check
def positive_data_accepted_or_refused_by_state(ctx, response, case):
    try:
        problem = response.json()
    except Exception:
        problem = None
    if (
        isinstance(problem, dict)
        and 400 <= response.status_code < 500
        and _refused_by_state(case, problem)
    ):
        return None
    return positive_data_acceptance(ctx, response, case)
