//! Cutting a sub-range of messages out of a stored (encoded) `MessageBatch`, so a delivery of a
//! few messages of a large batch carries those messages and not the whole batch again: a
//! consumer reading a batch of n messages one at a time then receives O(n) bytes, not O(n²).
//!
//! The cut works on the wire format: the records of the wanted messages and every other
//! top-level field (base timestamp, compression) are copied as they are, nothing is decoded or
//! re-encoded, so the messages arrive byte for byte as stored.

use bytes::{Bytes, BytesMut};
use prost::encoding::{WireType, decode_key, decode_varint};

/// Messages `[skip, skip + count)` of the encoded batch `payload`, as an encoded batch of their
/// own; `None` if `payload` does not walk cleanly or holds fewer messages (the caller then sends
/// the whole batch with a skip, as before).
pub fn messages(payload: &Bytes, skip: u32, count: u32) -> Option<Bytes> {
    let end = skip.checked_add(count)?;
    let mut out = BytesMut::new();
    let mut buf: &[u8] = payload;
    let mut index = 0u32;
    while !buf.is_empty() {
        let field_start = payload.len() - buf.len();
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        let len = match wire_type {
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => usize::try_from(decode_varint(&mut buf).ok()?).ok()?,
            WireType::StartGroup | WireType::EndGroup => return None,
        };
        if buf.len() < len {
            return None;
        }
        buf = &buf[len..];
        let field = &payload[field_start..payload.len() - buf.len()];
        if tag == 1 && wire_type == WireType::LengthDelimited {
            if (skip..end).contains(&index) {
                out.extend_from_slice(field);
            }
            index += 1;
        } else {
            out.extend_from_slice(field);
        }
    }
    (index >= end).then(|| out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use rapidmq_proto::v1 as pb;

    fn batch(n: usize) -> pb::MessageBatch {
        pb::MessageBatch {
            messages: (0..n)
                .map(|i| pb::Message {
                    key: Some(Bytes::from(format!("k{i}"))),
                    value: Bytes::from(format!("value {i}")),
                    priority: (i % 3) as u32,
                    ..Default::default()
                })
                .collect(),
            base_timestamp_ms: 1_700_000_000_000,
            compression: 0,
            ..Default::default()
        }
    }

    #[test]
    fn a_slice_holds_exactly_the_wanted_messages_and_the_batch_fields() {
        let whole = batch(10);
        let payload = Bytes::from(whole.encode_to_vec());
        let cut = messages(&payload, 3, 4).unwrap();
        let decoded = pb::MessageBatch::decode(cut.clone()).unwrap();
        assert_eq!(decoded.messages, whole.messages[3..7].to_vec());
        assert_eq!(decoded.base_timestamp_ms, whole.base_timestamp_ms);
        assert!(cut.len() < payload.len() / 2);
        assert_eq!(messages(&payload, 0, 10).unwrap(), payload);
    }

    #[test]
    fn a_range_past_the_end_or_a_broken_batch_gives_none() {
        let payload = Bytes::from(batch(3).encode_to_vec());
        assert!(messages(&payload, 2, 2).is_none());
        assert!(messages(&payload, u32::MAX, 2).is_none());
        assert!(messages(&payload.slice(..payload.len() - 1), 0, 1).is_none());
    }
}
