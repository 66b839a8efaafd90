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
//! | 1..9 | base offset |
//! | 9..13 | message count |
//! | 13..21 | broker append time, ms since the epoch |
//! | 21..29 | producer id (0 when not idempotent) |
//! | 29..37 | producer base sequence |
//! | 37.. | the producer's encoded `MessageBatch` |

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, decode_key, decode_varint};
use rapidmq_proto::ErrorCode;

use crate::error::{Error, Result};

const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 37;

/// Highest priority a message may carry.
pub const MAX_PRIORITY: u64 = 9;

/// One batch as stored and served.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub base_offset: u64,
    pub count: u32,
    pub append_time_ms: i64,
    /// The producer's encoded `MessageBatch`.
    pub payload: Bytes,
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
pub fn encode_stored(
    base_offset: u64,
    count: u32,
    append_time_ms: i64,
    producer_id: u64,
    base_sequence: u64,
    payload: &[u8],
) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + payload.len());
    buf.put_u8(VERSION);
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
    let mut header = &value[1..HEADER_LEN];
    let base_offset = header.get_u64();
    let count = header.get_u32();
    let append_time_ms = header.get_i64();
    Ok(StoredBatch {
        base_offset,
        count,
        append_time_ms,
        payload: value.slice(HEADER_LEN..),
    })
}

/// What validation learned about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    pub count: u32,
}

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
/// message at most `max_message_bytes` long (its encoded size: key, value, headers and framing).
pub fn validate(batch: &[u8], max_message_bytes: u32) -> Result<BatchSummary> {
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
                validate_message(&buf[..len], count)?;
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
    Ok(BatchSummary { count })
}

fn validate_message(mut buf: &[u8], index: u32) -> Result<()> {
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
        match (tag, wire_type) {
            (3, WireType::LengthDelimited) => {
                let len = length(&mut buf)?;
                validate_header(&buf[..len])?;
                buf.advance(len);
            }
            (7, WireType::Varint) => {
                let priority = decode_varint(&mut buf).map_err(malformed)?;
                if priority > MAX_PRIORITY {
                    return Err(Error::invalid(format!(
                        "message {index} has priority {priority}; priorities run from 0 to {MAX_PRIORITY}"
                    )));
                }
            }
            (1..=3, wt) if wt != WireType::LengthDelimited => {
                return Err(Error::malformed(format!(
                    "message {index}: field {tag} has the wrong wire type"
                )));
            }
            (4..=7, wt) if wt != WireType::Varint => {
                return Err(Error::malformed(format!(
                    "message {index}: field {tag} has the wrong wire type"
                )));
            }
            _ => skip(&mut buf, wire_type)?,
        }
    }
    Ok(())
}

fn validate_header(mut buf: &[u8]) -> Result<()> {
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
        match (tag, wire_type) {
            (1, WireType::LengthDelimited) => {
                let len = length(&mut buf)?;
                std::str::from_utf8(&buf[..len])
                    .map_err(|_| Error::malformed("a header key is not valid UTF-8"))?;
                buf.advance(len);
            }
            _ => skip(&mut buf, wire_type)?,
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use rapidmq_proto::v1::{Header, Message, MessageBatch};

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
        let summary = validate(&batch(&[b"a", b"bb", b"ccc"]), 1024).unwrap();
        assert_eq!(summary.count, 3);
    }

    #[test]
    fn rejects_an_oversized_message_with_its_code() {
        let big = vec![7u8; 2000];
        let err = validate(&batch(&[b"small", &big]), 1024).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MessageTooLarge);
    }

    #[test]
    fn rejects_truncated_and_garbage_bytes_as_malformed() {
        let encoded = batch(&[b"hello world"]);
        let err = validate(&encoded[..encoded.len() - 3], 1024).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedRequest);
        let err = validate(&[0xff, 0xff, 0xff], 1024).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedRequest);
    }

    #[test]
    fn rejects_an_empty_batch() {
        let err = validate(&MessageBatch::default().encode_to_vec(), 1024).unwrap_err();
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
            validate(&encoded, 1024).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn stored_value_round_trips_without_copying_the_payload() {
        let payload = batch(&[b"x"]);
        let stored = encode_stored(42, 1, 123, 9, 5, &payload);
        let decoded = decode_stored(stored.clone()).unwrap();
        assert_eq!(
            (decoded.base_offset, decoded.count, decoded.append_time_ms),
            (42, 1, 123)
        );
        assert_eq!(&decoded.payload[..], &payload[..]);
        assert_eq!(decoded.payload.as_ptr(), stored[HEADER_LEN..].as_ptr());
    }
}
