//! JSON values through serde (the `json` feature, on by default): [`json_message`] makes a
//! message of any `Serialize` value, [`JsonExt::json`] reads a received one back into any
//! `Deserialize` type. Optional: values stay bytes for everything else.
//!
//! A JSON message's value is the compact UTF-8 JSON, and it carries the header `content-type:
//! application/json` ([`CONTENT_TYPE_HEADER`], [`JSON_CONTENT_TYPE`]). Reading never requires
//! the header, so JSON from producers that do not set it reads the same. Every SDK's helpers
//! behave alike (docs/sdk-conformance.md, C28).
//!
//! ```no_run
//! use rapidmq::{JsonExt, json_message};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64, total: f64 }
//!
//! # async fn demo(producer: rapidmq::Producer, consumer: rapidmq::Consumer) -> rapidmq::Result<()> {
//! producer.send(json_message(&Order { id: 7, total: 12.5 })?.with_key("customer-7")).await?;
//! for message in consumer.poll(100, std::time::Duration::from_secs(1)).await? {
//!     let order: Order = message.json()?;
//!     # let _ = order;
//! }
//! # Ok(())
//! # }
//! ```

use rapidmq_core::{CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Message, QueueMessage, ReceivedMessage, Result};

/// A message whose value is `value` as compact JSON, with `content-type: application/json`.
/// Set its key, headers and the rest with the usual `with_*` calls.
///
/// Errors: `INVALID_ARGUMENT` when `value` cannot be serialised (a map with non-string keys, a
/// failing `Serialize` impl).
pub fn json_message<T: Serialize + ?Sized>(value: &T) -> Result<Message> {
    let json = serde_json::to_vec(value).map_err(|err| Error::InvalidArgument {
        message: format!("the value cannot be written as JSON: {err}"),
    })?;
    Ok(Message::new(json).with_header(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE))
}

/// Reads a received message's value as JSON.
pub trait JsonExt {
    /// The value parsed as JSON into `T`, whether or not the message says `content-type:
    /// application/json`.
    ///
    /// Errors: `INVALID_ARGUMENT` when the value is not JSON of type `T`.
    fn json<T: DeserializeOwned>(&self) -> Result<T>;
}

impl JsonExt for ReceivedMessage {
    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.value).map_err(|err| Error::InvalidArgument {
            message: format!(
                "the value at {}/{}/{} is not JSON of type {}: {err}",
                self.topic,
                self.partition,
                self.offset,
                std::any::type_name::<T>()
            ),
        })
    }
}

impl JsonExt for QueueMessage {
    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        self.message.json()
    }
}
