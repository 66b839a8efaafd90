//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! types' `ToSchema` derives, served at `/v1/openapi.json`; and the interactive docs at
//! `/v1/docs` (Swagger UI, served from the `utoipa-swagger-ui` crate's vendored copy: nothing is
//! fetched at build time or by the browser).

use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{
    acks, consume, dlq, fetch, flow, publish, sse, status, subscriptions, topics, websocket,
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
    ),
    tags(
        (name = "broker", description = "Broker status"),
        (name = "topics", description = "Create, list, describe and delete topics"),
        (name = "subscriptions", description = "Stream and queue subscriptions"),
        (name = "publish", description = "Publish one message or a batch"),
        (name = "consume", description = "Fetch by offset, long-poll, SSE, WebSocket; ack, nack, extend, commit"),
        (name = "dead letters", description = "List and replay dead letters"),
        (name = "observability", description = "Message-flow events of traced messages (metrics are at /metrics, outside this API)"),
    )
)]
pub struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `/v1/openapi.json` and the docs page at `/v1/docs`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let ui = SwaggerUi::new("/v1/docs")
        .url("/v1/openapi.json", document())
        // Swagger UI's default validator badge would call a public service from the browser.
        .config(Config::from("/v1/openapi.json").validator_url("none"));
    Router::from(ui)
}
