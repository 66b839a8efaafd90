//! Messages as JSON: what producers send (`value` as UTF-8 or `value_base64`, the same for keys
//! and header values) and what consumers receive (base64 always, plus the UTF-8 text when the
//! bytes are valid UTF-8).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use rapidmq_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::engine::{DeadLetterInfo, Delivery, QueueDelivery, ReceiptRef};

/// Standard base64 with its padding and zero trailing bits: what the broker decodes. The document
/// gives it to every `*_base64` field of a request (`openapi::document`).
pub const BASE64_PATTERN: &str =
    r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

/// One application header to publish. Headers are ordered and keys may repeat. Give the value as
/// `value` (UTF-8) or `value_base64`, not both; neither is an empty value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderIn {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_base64: Option<String>,
}

/// One application header of a consumed message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeaderJson {
    pub key: String,
    /// The value as UTF-8 text. Consumers get it when the value is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value as standard base64. Consumers always get it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
}

/// A message to publish. Give the value as `value` (UTF-8) or `value_base64`, not both; the
/// same for the key. A keyed message goes to the key's partition unless the request names one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_base64: Option<String>,
    /// The key as UTF-8: messages with the same key go to the same partition. `""` is an empty
    /// key, which is a key; without `key` and `key_base64` the message has none.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_base64: Option<String>,
    #[serde(default)]
    pub headers: Option<Vec<HeaderIn>>,
    /// Deliver this long after the broker appends it (takes precedence over `deliver_at_ms`); at
    /// most the broker's `limits.max_delay_ms`, the `maximum` here.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Deliver at this time, ms since the epoch: at most now + the broker's `limits.max_delay_ms`
    /// (else `DELIVER_AT_OUT_OF_RANGE`). 0, absent or past: now.
    #[serde(default)]
    pub deliver_at_ms: Option<i64>,
    /// Time to live from the broker's append time, in ms. 0 or absent: none.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub ttl_ms: Option<i64>,
    /// 0 (lowest) to 9 (highest).
    #[serde(default)]
    #[schema(maximum = 9)]
    pub priority: Option<u32>,
}

/// The bytes given as `field` (UTF-8) or `field_base64`; `None` when neither is given, which
/// for a key is no key (an empty string is an empty key).
fn given_bytes(
    field: &str,
    text: Option<String>,
    base64: Option<String>,
) -> Result<Option<Bytes>, ApiError> {
    match (text, base64) {
        (Some(_), Some(_)) => Err(ApiError::invalid(format!(
            "give `{field}` or `{field}_base64`, not both"
        ))),
        (Some(text), None) => Ok(Some(Bytes::from(text))),
        (None, Some(encoded)) => BASE64
            .decode(encoded.as_bytes())
            .map(|bytes| Some(Bytes::from(bytes)))
            .map_err(|err| ApiError::invalid(format!("`{field}_base64` is not base64: {err}"))),
        (None, None) => Ok(None),
    }
}

/// The bytes of a value: neither field given is an empty value.
fn bytes_of(field: &str, text: Option<String>, base64: Option<String>) -> Result<Bytes, ApiError> {
    given_bytes(field, text, base64).map(Option::unwrap_or_default)
}

impl MessageIn {
    /// The wire message, or why the JSON does not make one.
    pub fn into_pb(self) -> Result<pb::Message, ApiError> {
        let headers = self
            .headers
            .unwrap_or_default()
            .into_iter()
            .map(|h| {
                Ok(pb::Header {
                    value: bytes_of("headers[].value", h.value, h.value_base64)?,
                    key: h.key,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(pb::Message {
            key: given_bytes("key", self.key, self.key_base64)?,
            value: bytes_of("value", self.value, self.value_base64)?,
            headers,
            timestamp_delta_ms: 0,
            deliver_at_ms: self.deliver_at_ms.unwrap_or(0),
            ttl_ms: self.ttl_ms.unwrap_or(0),
            priority: self.priority.unwrap_or(0),
            delay_ms: self.delay_ms.unwrap_or(0),
        })
    }
}

/// A receipt: names one delivery of a queue message. Ack, nack and extend take it back.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub partition: u32,
    pub offset: u64,
    pub delivery_id: u64,
}

impl From<Receipt> for ReceiptRef {
    fn from(r: Receipt) -> ReceiptRef {
        ReceiptRef {
            partition: r.partition,
            offset: r.offset,
            delivery_id: r.delivery_id,
        }
    }
}

/// A consumed message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageOut {
    pub partition: u32,
    pub offset: u64,
    /// The key as UTF-8, when it has one and it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key as base64, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The value as UTF-8, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub value_base64: String,
    pub headers: Vec<HeaderJson>,
    /// The producer's timestamp, ms since the epoch.
    pub timestamp_ms: i64,
    /// When the broker appended it, ms since the epoch.
    pub append_time_ms: i64,
    pub priority: u32,
    pub ttl_ms: i64,
    /// Queue mode: the receipt to ack, nack or extend this delivery with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Queue mode: 1 on the first delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

impl MessageOut {
    fn new(
        partition: u32,
        offset: u64,
        m: &pb::Message,
        base_timestamp_ms: i64,
        append_time_ms: i64,
    ) -> MessageOut {
        MessageOut {
            partition,
            offset,
            key: m.key.as_deref().and_then(text),
            key_base64: m.key.as_ref().map(|key| BASE64.encode(key)),
            value: text(&m.value),
            value_base64: BASE64.encode(&m.value),
            headers: m
                .headers
                .iter()
                .map(|h| HeaderJson {
                    key: h.key.clone(),
                    value: text(&h.value),
                    value_base64: Some(BASE64.encode(&h.value)),
                })
                .collect(),
            timestamp_ms: base_timestamp_ms.saturating_add(m.timestamp_delta_ms),
            append_time_ms,
            priority: m.priority,
            ttl_ms: m.ttl_ms,
            receipt: None,
            attempt: None,
        }
    }

    /// The messages of a stream delivery (one stored batch, `skip`/`count` applied).
    pub fn from_delivery(d: &Delivery) -> Result<Vec<MessageOut>, ApiError> {
        let batch = rapidmq_proto::batch::decode(d.payload.clone()).map_err(|err| {
            ApiError::from(crate::error::Error::internal(format!(
                "stored batch does not decode: {err}"
            )))
        })?;
        Ok(batch
            .messages
            .iter()
            .enumerate()
            .skip(d.skip as usize)
            .take(d.count as usize)
            .map(|(i, m)| {
                MessageOut::new(
                    d.partition,
                    d.base_offset + i as u64,
                    m,
                    batch.base_timestamp_ms,
                    d.append_time_ms,
                )
            })
            .collect())
    }

    pub fn from_queue(d: &QueueDelivery) -> MessageOut {
        let mut out = MessageOut::new(
            d.partition,
            d.offset,
            &d.message.message,
            d.message.base_timestamp_ms,
            d.message.append_time_ms,
        );
        out.receipt = Some(Receipt {
            partition: d.partition,
            offset: d.offset,
            delivery_id: d.delivery_id,
        });
        out.attempt = Some(d.attempt);
        out
    }

    pub fn from_dead_letter(d: &DeadLetterInfo) -> MessageOut {
        MessageOut::new(d.dlq_partition, d.offset, &d.message, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_as_text_or_base64_but_not_both() {
        let m = MessageIn {
            value: Some("hi".into()),
            key_base64: Some(BASE64.encode([0xff, 0x00])),
            ..Default::default()
        }
        .into_pb()
        .unwrap();
        assert_eq!(&m.value[..], b"hi");
        assert_eq!(m.key.as_deref(), Some(&[0xff, 0x00][..]));

        let both = MessageIn {
            value: Some("a".into()),
            value_base64: Some("YQ==".into()),
            ..Default::default()
        };
        assert!(both.into_pb().is_err());
        let bad = MessageIn {
            value_base64: Some("not base64!".into()),
            ..Default::default()
        };
        assert!(bad.into_pb().is_err());
    }

    #[test]
    fn the_base64_pattern_matches_what_decodes() {
        // A regex crate is not a dependency: check the pattern's parts by hand on samples
        // that cover each branch, against the decoder.
        let matches = |s: &str| {
            let body = s.trim_end_matches('=');
            let pad = s.len() - body.len();
            let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
            if !s.len().is_multiple_of(4) || pad > 2 || !body.chars().all(alphabet) {
                return false;
            }
            let last = body.chars().last();
            match pad {
                0 => true,
                1 => last.is_some_and(|c| "AEIMQUYcgkosw048".contains(c)),
                _ => last.is_some_and(|c| "AQgw".contains(c)),
            }
        };
        for sample in [
            "", "YQ==", "YR==", "YWI=", "YWJ=", "YWJj", "Y", "YQ", "YQ=", "Y===", "YQ==YQ==",
            "+/8=", "+/9=", "//8A", "a b=", "YQ==\n",
        ] {
            assert_eq!(matches(sample), BASE64.decode(sample).is_ok(), "{sample:?}");
        }
        assert!(BASE64_PATTERN.contains("[AQgw]==") && BASE64_PATTERN.contains("048]="));
    }

    #[test]
    fn consumed_binary_values_come_as_base64_only() {
        let m = pb::Message {
            value: Bytes::from_static(&[0xff, 0xfe]),
            key: Some(Bytes::from_static(b"k")),
            ..Default::default()
        };
        let out = MessageOut::new(0, 7, &m, 100, 200);
        assert_eq!(out.value, None);
        assert_eq!(out.value_base64, BASE64.encode([0xff, 0xfe]));
        assert_eq!(out.key.as_deref(), Some("k"));
    }
}
