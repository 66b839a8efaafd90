//! Stored batches: validation of a producer's encoded `MessageBatch`, and the small header the
//! broker puts in front of it.
//!
//! The broker never re-encodes a batch. It walks the protobuf wire format once to count messages
//! and check limits (no allocation, no payload copies), then stores
//! `header ++ batch bytes` as one RocksDB value and serves `batch bytes` unchanged.
//!
//! Stored value layout (version 1, big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | version (1) |
//! | 1 | flags: bit 0 = some message has a TTL |
//! | 2..10 | base offset |
//! | 10..14 | message count |
//! | 14..22 | broker append time, ms since the epoch |
//! | 22..30 | producer id (0 when not idempotent) |
//! | 30..38 | producer base sequence |
//! | 38.. | the producer's encoded `MessageBatch` |
//!
//! Batches holding delayed messages (`deliver_at_ms`/`delay_ms`) or, on topics with a dedup
//! window, `msg-id` headers are the exception: the broker decodes and splits them (see
//! `publish.rs`), because some of their messages do not go to the log now.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, decode_key, decode_varint};
use rapidmq_proto::ErrorCode;

use crate::error::{Error, Result};

const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 38;

/// Header flag: at least one message of the batch has a TTL.
pub const FLAG_TTL: u8 = 1;

/// Header flag: at least one message of the batch is traced (a `traceparent` or `msg-id`
/// header, or every message when the broker traces all): deliveries record flow events.
pub const FLAG_TRACED: u8 = 2;

/// Highest priority a message may carry.
pub const MAX_PRIORITY: u64 = 9;

/// One batch as stored and served.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub flags: u8,
    pub base_offset: u64,
    pub count: u32,
    pub append_time_ms: i64,
    /// The producer's encoded `MessageBatch`.
    pub payload: Bytes,
    /// Sum of the messages' value lengths, when known without a walk (batches appended as the
    /// producer sent them, while they are in the tail cache); `None` after a store read.
    pub value_bytes: Option<u64>,
}

impl StoredBatch {
    /// One past the last offset in the batch.
    pub fn end_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }

    /// Bytes the batch occupies in storage.
    pub fn stored_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }
}

/// Builds the stored value for a batch.
#[allow(clippy::too_many_arguments)]
pub fn encode_stored(
    flags: u8,
    base_offset: u64,
    count: u32,
    append_time_ms: i64,
    producer_id: u64,
    base_sequence: u64,
    payload: &[u8],
) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_u8(VERSION);
    buf.put_u8(flags);
    buf.put_u64(base_offset);
    buf.put_u32(count);
    buf.put_i64(append_time_ms);
    buf.put_u64(producer_id);
    buf.put_u64(base_sequence);
    buf.put_slice(payload);
    buf.freeze()
}

/// Reads a stored value back. The payload is a slice of `value`, not a copy.
pub fn decode_stored(value: Bytes) -> Result<StoredBatch> {
    if value.len() < HEADER_LEN || value[0] != VERSION {
        return Err(Error::internal("stored batch has an unknown format"));
    }
    let flags = value[1];
    let mut header = &value[2..HEADER_LEN];
    let base_offset = header.get_u64();
    let count = header.get_u32();
    let append_time_ms = header.get_i64();
    Ok(StoredBatch {
        flags,
        base_offset,
        count,
        append_time_ms,
        payload: value.slice(HEADER_LEN..),
        value_bytes: None,
    })
}

/// What validation learned about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchSummary {
    pub count: u32,
    /// Some message is delayed (`deliver_at_ms` or `delay_ms`).
    pub scheduled: bool,
    /// Some message has a TTL.
    pub ttl: bool,
    /// Some message has a `msg-id` header.
    pub msg_ids: bool,
    /// Some message has a `traceparent` or `msg-id` header: its flow is recorded.
    pub traced: bool,
    /// Sum of the messages' value lengths (what the throughput metrics count as bytes).
    pub value_bytes: u64,
}

/// The limits a batch is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: u32,
    pub now_ms: i64,
    /// Latest allowed due time is `now_ms + max_delay_ms`.
    pub max_delay_ms: u64,
}

/// The header that marks an application-level message id.
pub const MSG_ID_HEADER: &str = "msg-id";

/// The W3C trace-context header; kept unchanged, and marks the message as traced.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Per-batch index entry: message count, append time and stored size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub count: u32,
    pub append_time_ms: i64,
    pub stored_len: u32,
}

impl IndexEntry {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(16);
        buf.put_u32(self.count);
        buf.put_i64(self.append_time_ms);
        buf.put_u32(self.stored_len);
        buf.freeze()
    }

    pub fn decode(mut value: &[u8]) -> Result<IndexEntry> {
        if value.len() != 16 {
            return Err(Error::internal("index entry has an unknown format"));
        }
        Ok(IndexEntry {
            count: value.get_u32(),
            append_time_ms: value.get_i64(),
            stored_len: value.get_u32(),
        })
    }
}

/// Checks that `batch` is a well-formed encoded `MessageBatch` with at least one message, each
/// message at most `max_message_bytes` long (its encoded size: key, value, headers and framing),
/// priorities 0–9 and due times within the horizon.
pub fn validate(batch: &[u8], limits: &Limits) -> Result<BatchSummary> {
    let max_message_bytes = limits.max_message_bytes;
    let mut summary = BatchSummary::default();
    let mut buf = batch;
    let mut count: u32 = 0;
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
        match (tag, wire_type) {
            (1, WireType::LengthDelimited) => {
                let len = length(&mut buf)?;
                if len > max_message_bytes as usize {
                    return Err(Error::new(
                        ErrorCode::MessageTooLarge,
                        format!(
                            "message {count} of the batch is {len} bytes; the topic allows at most {max_message_bytes}"
                        ),
                    ));
                }
                validate_message(&buf[..len], count, limits, &mut summary)?;
                buf.advance(len);
                count = count
                    .checked_add(1)
                    .ok_or_else(|| Error::malformed("too many messages in one batch"))?;
            }
            _ => skip(&mut buf, wire_type)?,
        }
    }
    if count == 0 {
        return Err(Error::new(
            ErrorCode::EmptyBatch,
            "the batch holds no messages",
        ));
    }
    summary.count = count;
    Ok(summary)
}

fn validate_message(
    mut buf: &[u8],
    index: u32,
    limits: &Limits,
    summary: &mut BatchSummary,
) -> Result<()> {
    let horizon = limits
        .now_ms
        .saturating_add(i64::try_from(limits.max_delay_ms).unwrap_or(i64::MAX));
    let out_of_range = |what: &str| {
        Error::new(
            ErrorCode::DeliverAtOutOfRange,
            format!(
                "message {index}: {what} is beyond the broker's horizon of {} ms from now",
                limits.max_delay_ms
            ),
        )
    };
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
        match (tag, wire_type) {
            (2, WireType::LengthDelimited) => {
                let len = length(&mut buf)?;
                summary.value_bytes += len as u64;
                buf.advance(len);
            }
            (3, WireType::LengthDelimited) => {
                let len = length(&mut buf)?;
                match validate_header(&buf[..len])? {
                    HeaderKind::MsgId => {
                        summary.msg_ids = true;
                        summary.traced = true;
                    }
                    HeaderKind::Traceparent => summary.traced = true,
                    HeaderKind::Other => {}
                }
                buf.advance(len);
            }
            (5, WireType::Varint) => {
                let deliver_at = decode_varint(&mut buf).map_err(malformed)? as i64;
                if deliver_at != 0 {
                    summary.scheduled = true;
                    if deliver_at > horizon {
                        return Err(out_of_range("deliver_at_ms"));
                    }
                }
            }
            (6, WireType::Varint) => {
                let ttl = decode_varint(&mut buf).map_err(malformed)? as i64;
                if ttl < 0 {
                    return Err(Error::invalid(format!(
                        "message {index} has a negative ttl_ms"
                    )));
                }
                summary.ttl |= ttl > 0;
            }
            (7, WireType::Varint) => {
                let priority = decode_varint(&mut buf).map_err(malformed)?;
                if priority > MAX_PRIORITY {
                    return Err(Error::new(
                        ErrorCode::InvalidPriority,
                        format!(
                            "message {index} has priority {priority}; priorities run from 0 to {MAX_PRIORITY}"
                        ),
                    ));
                }
            }
            (8, WireType::Varint) => {
                let delay = decode_varint(&mut buf).map_err(malformed)?;
                if delay != 0 {
                    summary.scheduled = true;
                    if delay > limits.max_delay_ms {
                        return Err(out_of_range("delay_ms"));
                    }
                }
            }
            (1..=3, wt) if wt != WireType::LengthDelimited => {
                return Err(Error::malformed(format!(
                    "message {index}: field {tag} has the wrong wire type"
                )));
            }
            (4..=8, wt) if wt != WireType::Varint => {
                return Err(Error::malformed(format!(
                    "message {index}: field {tag} has the wrong wire type"
                )));
            }
            _ => skip(&mut buf, wire_type)?,
        }
    }
    Ok(())
}

/// The headers the broker looks for.
enum HeaderKind {
    MsgId,
    Traceparent,
    Other,
}

/// Checks one header and says whether it is a `msg-id` or `traceparent` header.
fn validate_header(mut buf: &[u8]) -> Result<HeaderKind> {
    let mut kind = HeaderKind::Other;
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
        match (tag, wire_type) {
            (1, WireType::LengthDelimited) => {
                let len = length(&mut buf)?;
                let key = std::str::from_utf8(&buf[..len])
                    .map_err(|_| Error::malformed("a header key is not valid UTF-8"))?;
                kind = match key {
                    MSG_ID_HEADER => HeaderKind::MsgId,
                    TRACEPARENT_HEADER => HeaderKind::Traceparent,
                    _ => HeaderKind::Other,
                };
                buf.advance(len);
            }
            _ => skip(&mut buf, wire_type)?,
        }
    }
    Ok(kind)
}

fn length(buf: &mut &[u8]) -> Result<usize> {
    let len = decode_varint(buf).map_err(malformed)?;
    if len > buf.remaining() as u64 {
        return Err(Error::malformed("batch is truncated"));
    }
    Ok(len as usize)
}

fn skip(buf: &mut &[u8], wire_type: WireType) -> Result<()> {
    match wire_type {
        WireType::Varint => {
            decode_varint(buf).map_err(malformed)?;
        }
        WireType::SixtyFourBit => advance(buf, 8)?,
        WireType::ThirtyTwoBit => advance(buf, 4)?,
        WireType::LengthDelimited => {
            let len = length(buf)?;
            buf.advance(len);
        }
        WireType::StartGroup | WireType::EndGroup => {
            return Err(Error::malformed("batch uses deprecated protobuf groups"));
        }
    }
    Ok(())
}

fn advance(buf: &mut &[u8], n: usize) -> Result<()> {
    if buf.remaining() < n {
        return Err(Error::malformed("batch is truncated"));
    }
    buf.advance(n);
    Ok(())
}

fn malformed(err: prost::DecodeError) -> Error {
    Error::malformed(format!("batch is not a valid MessageBatch: {err}"))
}

/// Sum of the value lengths of messages `[first, first + count)` of an encoded (stored, hence
/// valid) `MessageBatch`: what a delivery counts as bytes out. Walks the wire format with plain
/// slice indexing (no decoding, no copies); stops quietly at anything malformed.
pub fn value_bytes(batch: &[u8], first: u32, count: u32) -> u64 {
    let end = first.saturating_add(count);
    let mut at = 0;
    let mut index = 0u32;
    let mut total = 0u64;
    while at < batch.len() && index < end {
        let Some((key, next)) = varint(batch, at) else {
            break;
        };
        at = next;
        if key == (1 << 3) | 2 {
            let Some((len, body)) = varint(batch, at) else {
                break;
            };
            let stop = body.saturating_add(len as usize).min(batch.len());
            if index >= first {
                total += message_value_len(&batch[body..stop]);
            }
            at = stop;
            index += 1;
        } else {
            match skip_field(batch, at, key) {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    total
}

fn message_value_len(message: &[u8]) -> u64 {
    let mut at = 0;
    let mut total = 0;
    while at < message.len() {
        let Some((key, next)) = varint(message, at) else {
            break;
        };
        if key == (2 << 3) | 2 {
            let Some((len, _)) = varint(message, next) else {
                break;
            };
            total += len;
        }
        match skip_field(message, next, key) {
            Some(after) => at = after,
            None => break,
        }
    }
    total
}

/// A varint at `at`: its value and the index after it.
fn varint(buf: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    let mut shift = 0;
    while shift < 64 {
        let byte = *buf.get(at)?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some((value, at));
        }
        shift += 7;
    }
    None
}

/// The index after the value of a field with `key` whose value starts at `at`.
fn skip_field(buf: &[u8], at: usize, key: u64) -> Option<usize> {
    match key & 7 {
        0 => varint(buf, at).map(|(_, next)| next),
        1 => Some(at + 8),
        2 => varint(buf, at).map(|(len, next)| next.saturating_add(len as usize)),
        5 => Some(at + 4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use rapidmq_proto::v1::{Header, Message, MessageBatch};

    fn limits(max_message_bytes: u32) -> Limits {
        Limits {
            max_message_bytes,
            now_ms: 1_000_000,
            max_delay_ms: 10_000,
        }
    }

    #[test]
    fn value_bytes_sum_the_values_of_the_chosen_messages() {
        let encoded = MessageBatch {
            messages: ["a", "bbb", "cccccc"]
                .iter()
                .map(|v| Message {
                    key: Bytes::from_static(b"key"),
                    value: Bytes::copy_from_slice(v.as_bytes()),
                    headers: vec![Header {
                        key: TRACEPARENT_HEADER.into(),
                        value: Bytes::from_static(b"00-x"),
                    }],
                    ..Default::default()
                })
                .collect(),
            base_timestamp_ms: 7,
            ..Default::default()
        }
        .encode_to_vec();
        let summary = validate(&encoded, &limits(1024)).unwrap();
        assert_eq!(summary.value_bytes, 10);
        assert!(summary.traced && !summary.msg_ids);
        assert_eq!(value_bytes(&encoded, 0, 3), 10);
        assert_eq!(value_bytes(&encoded, 1, 1), 3);
        assert_eq!(value_bytes(&encoded, 1, 10), 9);
    }

    #[test]
    fn notes_delays_ttls_and_msg_ids_and_enforces_the_delay_horizon() {
        let encoded = MessageBatch {
            messages: vec![
                Message {
                    ttl_ms: 5,
                    ..Default::default()
                },
                Message {
                    delay_ms: 10,
                    ..Default::default()
                },
                Message {
                    headers: vec![Header {
                        key: MSG_ID_HEADER.into(),
                        value: Bytes::from_static(b"1"),
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
        .encode_to_vec();
        let summary = validate(&encoded, &limits(1024)).unwrap();
        assert_eq!(
            summary,
            BatchSummary {
                count: 3,
                scheduled: true,
                ttl: true,
                msg_ids: true,
                traced: true,
                value_bytes: 0,
            }
        );

        let too_far = MessageBatch {
            messages: vec![Message {
                deliver_at_ms: 1_000_000 + 10_001,
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            validate(&too_far, &limits(1024)).unwrap_err().code(),
            ErrorCode::DeliverAtOutOfRange
        );
        let too_long = MessageBatch {
            messages: vec![Message {
                delay_ms: 10_001,
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            validate(&too_long, &limits(1024)).unwrap_err().code(),
            ErrorCode::DeliverAtOutOfRange
        );
    }

    fn batch(values: &[&[u8]]) -> Vec<u8> {
        MessageBatch {
            messages: values
                .iter()
                .map(|v| Message {
                    key: Bytes::from_static(b"k"),
                    value: Bytes::copy_from_slice(v),
                    headers: vec![Header {
                        key: "h".into(),
                        value: Bytes::from_static(b"v"),
                    }],
                    ..Default::default()
                })
                .collect(),
            base_timestamp_ms: 1_700_000_000_000,
            compression: 0,
        }
        .encode_to_vec()
    }

    #[test]
    fn counts_messages_of_a_well_formed_batch() {
        let summary = validate(&batch(&[b"a", b"bb", b"ccc"]), &limits(1024)).unwrap();
        assert_eq!(summary.count, 3);
    }

    #[test]
    fn rejects_an_oversized_message_with_its_code() {
        let big = vec![7u8; 2000];
        let err = validate(&batch(&[b"small", &big]), &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MessageTooLarge);
    }

    #[test]
    fn rejects_truncated_and_garbage_bytes_as_malformed() {
        let encoded = batch(&[b"hello world"]);
        let err = validate(&encoded[..encoded.len() - 3], &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedRequest);
        let err = validate(&[0xff, 0xff, 0xff], &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedRequest);
    }

    #[test]
    fn rejects_an_empty_batch() {
        let err = validate(&MessageBatch::default().encode_to_vec(), &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::EmptyBatch);
    }

    #[test]
    fn rejects_priority_above_nine() {
        let encoded = MessageBatch {
            messages: vec![Message {
                priority: 10,
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            validate(&encoded, &limits(1024)).unwrap_err().code(),
            ErrorCode::InvalidPriority
        );
    }

    #[test]
    fn stored_value_round_trips_without_copying_the_payload() {
        let payload = batch(&[b"x"]);
        let stored = encode_stored(FLAG_TTL, 42, 1, 123, 9, 5, &payload);
        let decoded = decode_stored(stored.clone()).unwrap();
        assert_eq!(
            (decoded.base_offset, decoded.count, decoded.append_time_ms),
            (42, 1, 123)
        );
        assert_eq!(&decoded.payload[..], &payload[..]);
        assert_eq!(decoded.payload.as_ptr(), stored[HEADER_LEN..].as_ptr());
    }
}
