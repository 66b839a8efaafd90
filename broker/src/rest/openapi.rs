//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! types' `ToSchema` derives, served at `/v1/openapi.json`; and the interactive docs at
//! `/v1/docs` (Swagger UI, served from the `utoipa-swagger-ui` crate's vendored copy: nothing is
//! fetched at build time or by the browser).
//!
//! The document is the contract generated clients trust, so it states exactly what the broker
//! accepts: request parsing is as strict as the document (`strict`, `params`), and the bounds
//! that come from the broker's configuration (`limits.*`) are written into the document served,
//! by [`document`].

use axum::Router;
use serde_json::{Value, json};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::messages::BASE64_PATTERN;
use crate::config::{LimitsConfig, QueueConfig};

use super::{
    acks, audit, auth, cluster, consume, dlq, fetch, flow, metadata, publish, roles, sse, status,
    subscriptions, tenants, topics, users, websocket,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "RapidMQ REST API",
        description = "Topics, subscriptions, publishing and consuming over HTTP/JSON: the same operations as the gRPC API. Errors are RFC 9457 problem documents carrying RapidMQ's stable error codes.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        status::get,
        cluster::get,
        cluster::add,
        cluster::remove,
        cluster::rebalance,
        cluster::rebalance_replicas_route,
        metadata::get,
        topics::create, topics::list, topics::describe, topics::alter, topics::delete,
        subscriptions::list_all, subscriptions::list, subscriptions::create,
        subscriptions::describe, subscriptions::seek, subscriptions::delete,
        publish::one, publish::batch,
        fetch::fetch,
        consume::poll,
        acks::ack, acks::nack, acks::extend, acks::commit,
        sse::events, websocket::socket,
        dlq::list, dlq::replay,
        flow::list,
        auth::login, auth::whoami,
        users::list, users::create, users::delete, users::set_password, users::tokens,
        users::create_token, users::revoke,
        roles::list, roles::create, roles::delete, roles::bindings, roles::bind, roles::unbind,
        tenants::list, tenants::create, tenants::describe, tenants::delete, tenants::set_quotas,
        audit::list, audit::export,
    ),
    modifiers(&SecuritySchemes),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    tags(
        (name = "broker", description = "Broker status"),
        (name = "topics", description = "Create, list, describe and delete topics"),
        (name = "subscriptions", description = "Stream and queue subscriptions"),
        (name = "publish", description = "Publish one message or a batch"),
        (name = "consume", description = "Fetch by offset, long-poll, SSE, WebSocket; ack, nack, extend, commit"),
        (name = "dead letters", description = "List and replay dead letters"),
        (name = "auth", description = "Log in, who am I, users, API tokens, roles, role bindings and the audit log (docs/security.md)"),
        (name = "tenants", description = "Tenants and their quotas; cluster admins act in one with the `rapidmq-tenant` header (docs/security.md)"),
        (name = "observability", description = "Message-flow events of traced messages (metrics are at /metrics, outside this API)"),
    )
)]
pub struct ApiDoc;

/// How callers authenticate (docs/adr/0004-security.md §10): a bearer token (`rmq_…`, an API
/// token or a session from a login) on every operation, or the session cookie on `GET`s. The
/// public operations (the login) say `security: []`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rmq_<id>_<secret>")
                    .description(Some(
                        "An API token (`rapidmq token create`) or a session token from POST /v1/auth/login",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookieAuth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The session a login sets; accepted on GET and HEAD only",
            ))),
        );
    }
}

/// The document as this broker serves it: the generated one, plus what the derives cannot say.
/// - The bounds this broker's `limits` set: most partitions of a topic, the largest
///   `max_message_bytes` a topic may set, the longest `delay_ms`; and those its `queue` settings
///   set: the longest nack `delay_ms` and ack deadline `extend_ms`.
/// - A value (or key) is given as text or as base64 (standard, padded), not both.
pub fn document(limits: &LimitsConfig, queue: &QueueConfig) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let max_delay_ms = limits.max_delay_ms.min(i64::MAX as u64);
    for (schema, property, maximum) in [
        (
            "TopicConfig",
            "partitions",
            u64::from(limits.max_partitions),
        ),
        (
            "TopicConfig",
            "max_message_bytes",
            u64::from(limits.max_message_bytes),
        ),
        (
            "AlterTopic",
            "max_message_bytes",
            u64::from(limits.max_message_bytes),
        ),
        ("MessageIn", "delay_ms", max_delay_ms),
        (
            "Nack",
            "delay_ms",
            queue.max_nack_delay_ms.min(i64::MAX as u64),
        ),
        (
            "Extend",
            "extend_ms",
            queue.max_ack_extension_ms.min(i64::MAX as u64),
        ),
    ] {
        set(
            &mut doc,
            &format!("/components/schemas/{schema}/properties/{property}"),
            "maximum",
            json!(maximum),
        );
    }
    for (schema, property) in [
        ("MessageIn", "value_base64"),
        ("MessageIn", "key_base64"),
        ("HeaderIn", "value_base64"),
    ] {
        set(
            &mut doc,
            &format!("/components/schemas/{schema}/properties/{property}"),
            "pattern",
            json!(BASE64_PATTERN),
        );
    }
    for (schema, pairs) in [
        (
            "MessageIn",
            &[("value", "value_base64"), ("key", "key_base64")][..],
        ),
        ("HeaderIn", &[("value", "value_base64")][..]),
    ] {
        let both: Vec<Value> = pairs
            .iter()
            .map(|&(text, base64)| {
                json!({
                    "properties": {text: {"type": "string"}, base64: {"type": "string"}},
                    "required": [text, base64],
                })
            })
            .collect();
        set(
            &mut doc,
            &format!("/components/schemas/{schema}"),
            "not",
            json!({"anyOf": both}),
        );
    }
    doc
}

/// Sets `key` in the object at `pointer`, if there is one (the tests check that there is).
fn set(doc: &mut Value, pointer: &str, key: &str, value: Value) {
    if let Some(Value::Object(object)) = doc.pointer_mut(pointer) {
        object.insert(key.to_string(), value);
    }
}

/// `/v1/openapi.json` and the docs page at `/v1/docs`.
pub fn routes<S: Clone + Send + Sync + 'static>(
    limits: &LimitsConfig,
    queue: &QueueConfig,
) -> Router<S> {
    let ui = SwaggerUi::new("/v1/docs")
        .external_url_unchecked("/v1/openapi.json", document(limits, queue))
        // Swagger UI's default validator badge would call a public service from the browser.
        .config(Config::from("/v1/openapi.json").validator_url("none"));
    Router::from(ui)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::params::{MAX_MESSAGES, MAX_WAIT_MS};

    fn json(limits: &LimitsConfig) -> Value {
        document(limits, &QueueConfig::default())
    }

    fn query_parameter<'a>(doc: &'a Value, path: &str, name: &str) -> &'a Value {
        operation_parameter(doc, "get", path, name)
    }

    fn operation_parameter<'a>(doc: &'a Value, method: &str, path: &str, name: &str) -> &'a Value {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no parameter {name}"))
    }

    #[test]
    fn configured_limits_bound_the_document() {
        let limits = LimitsConfig {
            max_partitions: 64,
            max_message_bytes: 1000,
            max_delay_ms: 5000,
            ..LimitsConfig::default()
        };
        let doc = json(&limits);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["TopicConfig"]["properties"]["partitions"]["maximum"],
            64
        );
        assert_eq!(
            schemas["TopicConfig"]["properties"]["max_message_bytes"]["maximum"],
            1000
        );
        assert_eq!(
            schemas["AlterTopic"]["properties"]["max_message_bytes"]["maximum"],
            1000
        );
        assert_eq!(
            schemas["MessageIn"]["properties"]["delay_ms"]["maximum"],
            5000
        );
    }

    #[test]
    fn queue_caps_bound_nack_delay_and_extension() {
        let queue = QueueConfig {
            max_nack_delay_ms: 7000,
            max_ack_extension_ms: 9000,
            ..QueueConfig::default()
        };
        let doc = document(&LimitsConfig::default(), &queue);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Nack"]["properties"]["delay_ms"]["maximum"], 7000);
        assert_eq!(
            schemas["Extend"]["properties"]["extend_ms"]["maximum"],
            9000
        );
    }

    #[test]
    fn text_or_base64_not_both() {
        let doc = json(&LimitsConfig::default());
        let schemas = &doc["components"]["schemas"];
        let not = &schemas["MessageIn"]["not"]["anyOf"];
        assert_eq!(not[0]["required"], json!(["value", "value_base64"]));
        assert_eq!(not[1]["required"], json!(["key", "key_base64"]));
        let not = &schemas["HeaderIn"]["not"]["anyOf"];
        assert_eq!(not[0]["required"], json!(["value", "value_base64"]));
        for (schema, property) in [
            ("MessageIn", "value_base64"),
            ("MessageIn", "key_base64"),
            ("HeaderIn", "value_base64"),
        ] {
            assert_eq!(
                schemas[schema]["properties"][property]["pattern"], BASE64_PATTERN,
                "{schema}.{property}"
            );
        }
    }

    #[test]
    fn query_bounds_are_the_ones_the_handlers_check() {
        let doc = json(&LimitsConfig::default());
        for path in [
            "/v1/topics/{topic}/partitions/{partition}/messages",
            "/v1/topics/{topic}/subscriptions/{subscription}/messages",
        ] {
            let max = &query_parameter(&doc, path, "max")["schema"];
            assert_eq!(max["minimum"], 1, "{path}");
            assert_eq!(max["maximum"], MAX_MESSAGES, "{path}");
            let wait = &query_parameter(&doc, path, "wait_ms")["schema"];
            assert_eq!(wait["maximum"], MAX_WAIT_MS, "{path}");
        }
        let limit = &query_parameter(&doc, "/v1/flow-events", "limit")["schema"];
        assert_eq!(limit["maximum"], super::super::flow::MAX_EVENTS);

        let list = "/v1/topics/{topic}/dead-letters";
        let max = &query_parameter(&doc, list, "max")["schema"];
        assert_eq!(max["minimum"], 1);
        assert_eq!(max["maximum"], crate::engine::MAX_PAGE);
        let token = &query_parameter(&doc, list, "page_token")["schema"];
        // The alphabet the engine encodes tokens in (`engine/dlq/page.rs`).
        assert_eq!(token["pattern"], "^[A-Za-z0-9_-]*$");
        let replay = "/v1/topics/{topic}/dead-letters/replay";
        let max = &operation_parameter(&doc, "post", replay, "max")["schema"];
        assert_eq!(max["minimum"], 1);
        assert_eq!(max["maximum"], crate::engine::MAX_REPLAY);
    }

    #[test]
    fn every_operation_needs_credentials_but_the_login() {
        let doc = json(&LimitsConfig::default());
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
        assert_eq!(schemes["cookieAuth"]["in"], "cookie");
        assert_eq!(schemes["cookieAuth"]["name"], crate::auth::SESSION_COOKIE);
        assert_eq!(
            doc["security"],
            json!([{"bearerAuth": []}, {"cookieAuth": []}])
        );
        let mut public = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if op.get("security") == Some(&json!([{}])) {
                    public.push(format!("{method} {path}"));
                }
            }
        }
        assert_eq!(public, ["post /v1/auth/login"]);
        for path in ["/v1/roles", "/v1/role-bindings"] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
            assert!(doc["paths"][path]["post"].is_object(), "{path}");
        }
        assert_eq!(
            doc["components"]["schemas"]["Permission"]["properties"]["effect"]["$ref"],
            "#/components/schemas/Effect"
        );
    }

    /// Every integer carries the `format` whose range `strict` enforces.
    #[test]
    fn every_integer_has_an_int32_or_int64_format() {
        fn walk(at: &str, value: &Value, bad: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    let integer = match map.get("type") {
                        Some(Value::String(t)) => t == "integer",
                        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
                        _ => false,
                    };
                    let format = map.get("format").and_then(Value::as_str);
                    if integer && !matches!(format, Some("int32" | "int64")) {
                        bad.push(at.to_string());
                    }
                    for (key, v) in map {
                        walk(&format!("{at}/{key}"), v, bad);
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(&format!("{at}/{i}"), v, bad);
                    }
                }
                _ => {}
            }
        }
        let mut bad = Vec::new();
        walk("", &json(&LimitsConfig::default()), &mut bad);
        assert!(bad.is_empty(), "integers without int32/int64: {bad:?}");
    }
}
