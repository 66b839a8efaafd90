//! W3C trace-context propagation: the producer adds a `traceparent` header to messages sent
//! while the application has a current trace context, so a consumer (and the broker's flow
//! events) can tie the message to the trace that produced it.
//!
//! The core depends on no tracing framework. The current context comes from, in order:
//! 1. a `traceparent` header the message already has (never replaced);
//! 2. [`in_context`]: a traceparent scoped to a future, for applications (and bindings) that
//!    carry the context explicitly;
//! 3. a provider installed once with [`set_traceparent_provider`], which asks the application's
//!    tracing stack for its current span (e.g. OpenTelemetry via `tracing-opentelemetry`).
//!
//! Without a scope or provider, [`propagate`] costs one task-local lookup and one atomic load
//! per message and adds nothing.

use std::future::Future;
use std::sync::OnceLock;

use crate::types::Message;

pub use rapidmq_proto::TRACEPARENT_HEADER;

/// Returns the application's current traceparent, if it has a current span.
pub type TraceparentProvider = fn() -> Option<String>;

static PROVIDER: OnceLock<TraceparentProvider> = OnceLock::new();

tokio::task_local! {
    static CURRENT: String;
}

/// Installs the process-wide provider of the current traceparent. Only the first call takes
/// effect; returns whether this one did.
///
/// ```
/// // With OpenTelemetry, the provider would format the current span's context:
/// // 00-{trace_id}-{span_id}-{flags:02x}
/// fn current() -> Option<String> {
///     None
/// }
/// rapidmq_core::trace::set_traceparent_provider(current);
/// ```
pub fn set_traceparent_provider(provider: TraceparentProvider) -> bool {
    PROVIDER.set(provider).is_ok()
}

/// Runs `future` with `traceparent` as its current trace context: messages it sends without a
/// `traceparent` header get this one.
pub async fn in_context<F: Future>(traceparent: impl Into<String>, future: F) -> F::Output {
    CURRENT.scope(traceparent.into(), future).await
}

/// The current traceparent: the [`in_context`] scope's, else the provider's.
pub fn current() -> Option<String> {
    CURRENT
        .try_with(Clone::clone)
        .ok()
        .or_else(|| PROVIDER.get().and_then(|provider| provider()))
}

/// Adds the current traceparent to `message` unless it already carries one.
pub fn propagate(message: &mut Message) {
    if message.headers.iter().any(|(k, _)| k == TRACEPARENT_HEADER) {
        return;
    }
    if let Some(traceparent) = current() {
        message
            .headers
            .push((TRACEPARENT_HEADER.to_string(), traceparent.into()));
    }
}

/// Whether `value` is a well-formed version-00 traceparent
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, ids not all zero).
pub fn is_valid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn header(message: &Message) -> Option<String> {
        message
            .headers
            .iter()
            .find(|(k, _)| k == TRACEPARENT_HEADER)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    #[tokio::test]
    async fn a_scoped_context_is_added_and_an_existing_header_is_kept() {
        let mut plain = Message::new("a");
        propagate(&mut plain);
        assert_eq!(header(&plain), None);

        in_context(TP, async {
            let mut message = Message::new("b");
            propagate(&mut message);
            assert_eq!(header(&message).as_deref(), Some(TP));
            propagate(&mut message);
            assert_eq!(message.headers.len(), 1, "added once");

            let own = "00-11111111111111111111111111111111-2222222222222222-00";
            let mut explicit = Message::new("c").with_header(TRACEPARENT_HEADER, own);
            propagate(&mut explicit);
            assert_eq!(header(&explicit).as_deref(), Some(own));
            assert_eq!(explicit.headers.len(), 1);
        })
        .await;
    }

    #[test]
    fn traceparents_are_validated_by_the_w3c_format() {
        assert!(is_valid(TP));
        assert!(!is_valid(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
        ));
        assert!(!is_valid(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid("not a traceparent"));
    }
}
