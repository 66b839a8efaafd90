//! One live consumer session for the streaming transports (Server-Sent Events, WebSocket): open
//! it on an existing subscription in the subscription's own mode, then take messages from it.

use rapidmq_proto::ErrorCode;

use super::error::ApiError;
use super::messages::MessageOut;
use crate::engine::{Engine, Session, SessionEvent};
use crate::error::Error;
use crate::principal::Principal;

/// Joins `subscription` as `consumer`. The subscription must exist: streaming never creates one.
pub async fn open(
    engine: &Engine,
    principal: &Principal,
    topic: &str,
    subscription: &str,
    consumer: &str,
) -> Result<Session, ApiError> {
    let mode = engine.consume_mode(principal, topic, subscription)?;
    Ok(engine
        .subscribe(
            principal,
            topic,
            Some(subscription),
            mode,
            Default::default(),
            None,
            consumer,
        )
        .await?)
}

/// The next messages, at most `credits` (at least 1). Cancel-safe. Empty when the session only
/// changed assignment.
pub async fn next(
    engine: &Engine,
    session: &mut Session,
    credits: u32,
) -> Result<Vec<MessageOut>, Error> {
    match session {
        Session::Stream(stream) => match stream.next(credits).await? {
            SessionEvent::Assigned { .. } => Ok(Vec::new()),
            SessionEvent::Delivery(delivery) => MessageOut::from_delivery(&delivery)
                .map_err(|_| Error::new(ErrorCode::Internal, "a stored batch does not decode")),
        },
        Session::Queue(queue) => {
            let deliveries = queue.next(engine, credits).await?;
            engine.observe_queue_deliveries(
                queue.topic(),
                queue.subscription().name(),
                &deliveries,
            );
            Ok(deliveries.iter().map(MessageOut::from_queue).collect())
        }
    }
}
