//! REST errors: RFC 9457 `application/problem+json` bodies carrying the stable error code.
//!
//! [`ApiError`] is the one error every handler returns. Engine errors keep their code and HTTP
//! status (`ErrorCode::http_status`); bad requests (malformed JSON, wrong types or ranges, bad
//! path or query parameters, oversized bodies) become 4xx problems through the [`Json`],
//! [`Query`] and [`Path`] extractors defined here (bodies and queries are read with
//! [`Strict`], as strict as the OpenAPI document), and [`problem_fallback`] turns any other
//! error response (unknown route, wrong method, timeout) into a problem too. Internal details
//! are logged, never returned.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, MissingJsonContentType, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rapidmq_proto::{AUTH_REASON_EXPIRED, AUTH_REASON_METADATA, ErrorCode, QUOTA_METADATA};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::strict::{Strict, integral_numbers};
use crate::error::Error;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document with RapidMQ's stable error code.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// `urn:rapidmq:error:<NAME>`: identifies the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem (the same for every instance of a code).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request. Meant for people; may change between releases.
    pub detail: String,
    /// The stable numeric error code (the same as gRPC's `rapidmq-error-code`).
    pub code: u32,
    /// The stable error name, e.g. `TOPIC_NOT_FOUND`.
    pub name: String,
    /// On `RESOURCE_EXHAUSTED` from a tenant quota: which one (e.g. `publish_bytes_per_sec`),
    /// also sent as the `rapidmq-quota` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

/// An error answered as problem+json.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    status: StatusCode,
    detail: String,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    retry_after: Option<std::time::Duration>,
    /// Sent as `rapidmq-auth-reason: expired`.
    credentials_expired: bool,
    /// Sent as `rapidmq-quota` and the problem member `quota`.
    quota: Option<&'static str>,
}

impl ApiError {
    /// An error with the status its code is sent with.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: status_of(code),
            detail: detail.into(),
            retry_after: None,
            credentials_expired: false,
            quota: None,
        }
    }

    /// An error sent with another status than its code's (HTTP-level conditions such as an
    /// unknown route or a wrong method, for which the code table has no entry of its own).
    pub fn with_status(code: ErrorCode, status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status,
            detail: detail.into(),
            retry_after: None,
            credentials_expired: false,
            quota: None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn invalid(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidArgument, detail)
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:rapidmq:error:{}", self.code.name()),
            title: title(self.code),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.code(),
            name: self.code.name().to_string(),
            quota: self.quota.map(str::to_string),
        }
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `TOPIC_NOT_FOUND` → `Topic not found`.
fn title(code: ErrorCode) -> String {
    let words = code.name().replace('_', " ").to_lowercase();
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> ApiError {
        let code = err.code();
        if code == ErrorCode::Internal {
            tracing::error!(cause = %err, "request failed");
            return ApiError::new(
                code,
                "the broker failed the request; details are in its log",
            );
        }
        let mut api = ApiError::new(code, err.message());
        api.retry_after = err.retry_after();
        api.credentials_expired = err.credentials_expired();
        api.quota = err.quota();
        api
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::observability::metrics::count_error(
            crate::observability::Transport::Http,
            self.code,
        );
        if self.status.is_server_error() {
            tracing::warn!(code = %self.code, detail = %self.detail, "request failed");
        } else {
            tracing::debug!(code = %self.code, detail = %self.detail, "request rejected");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_millis().div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if let Some(quota) = self.quota {
            response
                .headers_mut()
                .insert(QUOTA_METADATA, HeaderValue::from_static(quota));
        }
        if self.credentials_expired {
            response.headers_mut().insert(
                AUTH_REASON_METADATA,
                HeaderValue::from_static(AUTH_REASON_EXPIRED),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let detail = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::invalid(detail),
            JsonRejection::JsonSyntaxError(_) => ApiError::new(ErrorCode::MalformedRequest, detail),
            JsonRejection::MissingJsonContentType(_) => ApiError::with_status(
                ErrorCode::MalformedRequest,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON, sent with `Content-Type: application/json`",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::with_status(
                ErrorCode::MessageTooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than the broker accepts (limits.max_request_bytes)",
            ),
            other => ApiError::with_status(
                ErrorCode::MalformedRequest,
                client_status(other.status()),
                detail,
            ),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::invalid(rejection.body_text())
    }
}

/// A rejection status as a client error: never let a rejection turn into a 5xx.
fn client_status(status: StatusCode) -> StatusCode {
    if status.is_client_error() {
        status
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// A JSON body, read with [`Strict`] so that it is exactly as strict as the OpenAPI document;
/// rejections are problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::from(JsonRejection::from(
                MissingJsonContentType::default(),
            )));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        let body = integral_numbers(&bytes);
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        let value =
            serde_path_to_error::deserialize(Strict(&mut deserializer)).map_err(json_error)?;
        deserializer.end().map_err(|err| {
            ApiError::new(
                ErrorCode::MalformedRequest,
                format!("the body is not valid JSON: {err}"),
            )
        })?;
        Ok(Json(value))
    }
}

/// Whether the request says its body is JSON: `application/json` or `application/*+json`
/// (with parameters such as `charset`), as `axum::Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// Malformed JSON is `MALFORMED_REQUEST`; JSON that does not match the document (a wrong type,
/// an unknown field, a number out of range) is `INVALID_ARGUMENT`, naming where.
fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    match err.inner().classify() {
        serde_json::error::Category::Data => {
            ApiError::invalid(format!("the body does not match the API document: {err}"))
        }
        _ => ApiError::new(
            ErrorCode::MalformedRequest,
            format!("the body is not valid JSON: {err}"),
        ),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters, read with [`Strict`] (integers in their documented range); rejections are
/// problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(Strict(deserializer))
            .map(Query)
            .map_err(|err| ApiError::invalid(format!("bad query parameter: {err}")))
    }
}

/// `axum::extract::Path` whose rejections are problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// The answer for routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::with_status(
        ErrorCode::InvalidArgument,
        StatusCode::NOT_FOUND,
        "no such route; the API is described at /v1/openapi.json",
    )
}

/// The answer for a known route called with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::with_status(
        ErrorCode::InvalidArgument,
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not serve that method; see /v1/openapi.json",
    )
}

/// Turns error responses made outside the handlers (timeouts, body limits, upgrade failures)
/// into problems, so every error a client sees has the same shape.
pub async fn problem_fallback(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::REQUEST_TIMEOUT => (
            ErrorCode::Timeout,
            "the request did not finish within http.request_timeout_ms",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::MessageTooLarge,
            "the request body is larger than the broker accepts (limits.max_request_bytes)",
        ),
        StatusCode::NOT_FOUND => (ErrorCode::InvalidArgument, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::InvalidArgument,
            "this route does not serve that method",
        ),
        s if s.is_server_error() => (
            ErrorCode::Internal,
            "the broker failed the request; details are in its log",
        ),
        _ => (
            ErrorCode::MalformedRequest,
            "the request was not understood",
        ),
    };
    let mut problem = ApiError::with_status(code, status, detail).into_response();
    // Keep headers such as `Allow` or CORS headers the original response carried.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_carry_code_name_and_a_stable_title() {
        let problem = ApiError::from(Error::topic_not_found("orders")).problem();
        assert_eq!(problem.status, 404);
        assert_eq!(problem.code, 2001);
        assert_eq!(problem.name, "TOPIC_NOT_FOUND");
        assert_eq!(problem.title, "Topic not found");
        assert_eq!(problem.kind, "urn:rapidmq:error:TOPIC_NOT_FOUND");
        assert!(problem.detail.contains("orders"));
    }

    #[test]
    fn internal_details_stay_in_the_log() {
        let problem = ApiError::from(Error::internal("rocksdb: /secret/path corrupt")).problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"), "{}", problem.detail);
    }
}
