//! Lists that cross to and from the Java facade packed into one buffer, which
//! `io.rapidmq.Packed` reads and writes.
//!
//! uniffi's generated code moves a list of records field by field through its generic
//! converters: for every element it sizes the list through a stream, writes or reads each field
//! with a call of its own, and on reading decodes strings and builds header lists through
//! streams. Profiles of the Java producer and consumer put a large share of their time there.
//! The hot lists cross as one `byte[]` instead ([`Packed`] out of Rust, a [`Payload`] into it):
//!
//! - a poll's messages ([`Packed::received`]);
//! - a producer's send outcomes ([`Packed::completions`]);
//! - a batch of messages to send ([`unpack_messages`]).
//!
//! Layouts, little-endian; lengths are `u32` byte counts, strings UTF-8, a duration is `u64`
//! seconds then `u32` nanoseconds.
//!
//! ```text
//! received:  u32 count, then per message:
//!   u8  flags                    TOPIC 1, KEY 2, DELIVER_AT 4, TTL 8
//!   [u32 len, topic]             when TOPIC: the first message, or a topic other than the last
//!   u32 partition, u64 offset, i64 timestamp_ms, i64 append_time_ms, u8 priority
//!   [i64 deliver_at_ms]          when DELIVER_AT
//!   [duration ttl]               when TTL
//!   [u32 len, key]               when KEY
//!   u32 len, value
//!   u32 headers, then for each: u32 len, name, u32 len, value
//!
//! completions:  u32 count, then per outcome:
//!   u64 id, u8 outcome           DELIVERED 0: a delivery follows; FAILED 1: the next entry of
//!                                the failures list that comes beside the buffer is this one's
//!   [u32 partition, u8 has_offset, u64 offset, u8 status, u8 durability]   when DELIVERED
//!                                (status and durability: the index of the enum's variant)
//!
//! outgoing:  u32 count, then per message:
//!   u8  flags                    KEY 1, TIMESTAMP 2, DELAY 4, DELIVER_AT 8, TTL 16
//!   [u32 len, key]               when KEY
//!   u32 len, value
//!   u32 headers, then for each: u32 len, name, u32 len, value
//!   [i64 timestamp_ms] [duration delay] [i64 deliver_at_ms] [duration ttl]   when flagged
//!   u8 priority
//! ```

use std::time::Duration;

use bytes::Bytes;
use rapidmq_core::{self as core, Error};

use crate::error::NativeError;
use crate::producer::SendCompletion;
use crate::types::{Delivery, Durability, SendStatus};

/// Flags of a received message: its topic differs from the previous message's (always set on
/// the first).
const TOPIC: u8 = 1;
/// A key follows.
const KEY: u8 = 2;
/// A delivery time follows.
const DELIVER_AT: u8 = 4;
/// A time to live follows.
const TTL: u8 = 8;

/// Flags of an outgoing message: which of its optional fields follow.
const OUT_KEY: u8 = 1;
const OUT_TIMESTAMP: u8 = 2;
const OUT_DELAY: u8 = 4;
const OUT_DELIVER_AT: u8 = 8;
const OUT_TTL: u8 = 16;

/// Outcomes in the completions layout.
const DELIVERED: u8 = 0;
const FAILED: u8 = 1;

/// A packed list: `byte[]` in Java. The buffer starts with the big-endian `i32` length of what
/// follows, the wire form of a `Vec<u8>`, so it crosses without another copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed(Vec<u8>);

/// Bytes of a message besides its topic, key, value and headers, at most: flags, partition,
/// offset, two times, priority, delivery time, time to live, and the key, value and header
/// counts.
const FIXED: usize = 1 + 4 + 8 + 8 + 8 + 1 + 8 + 12 + 4 + 4 + 4;

impl Packed {
    /// A buffer for about `size` bytes, with room for the length in front.
    fn with_capacity(size: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(4 + size);
        buf.extend_from_slice(&[0; 4]);
        buf
    }

    /// Writes the length in front.
    fn finish(mut buf: Vec<u8>) -> Packed {
        let len = i32::try_from(buf.len() - 4).expect("a packed list of at most i32::MAX bytes");
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Packed(buf)
    }

    /// A poll's `messages`, in order.
    pub fn received(messages: &[core::ReceivedMessage]) -> Packed {
        let size: usize = messages
            .iter()
            .map(|m| {
                FIXED
                    + m.key.as_ref().map_or(0, |k| k.len())
                    + m.value.len()
                    + m.headers
                        .iter()
                        .map(|(k, v)| 8 + k.len() + v.len())
                        .sum::<usize>()
            })
            .sum();
        // The length in front, the count, and the first topic (a poll seldom holds another).
        let first_topic = messages.first().map_or(0, |m| 4 + m.topic.len());
        let mut buf = Packed::with_capacity(4 + first_topic + size);
        put_len(&mut buf, messages.len());
        let mut topic: Option<&str> = None;
        for m in messages {
            let mut flags = 0;
            if topic != Some(m.topic.as_str()) {
                flags |= TOPIC;
            }
            if m.key.is_some() {
                flags |= KEY;
            }
            if m.deliver_at_ms.is_some() {
                flags |= DELIVER_AT;
            }
            if m.ttl.is_some() {
                flags |= TTL;
            }
            buf.push(flags);
            if flags & TOPIC != 0 {
                put_bytes(&mut buf, m.topic.as_bytes());
                topic = Some(&m.topic);
            }
            buf.extend_from_slice(&m.partition.to_le_bytes());
            buf.extend_from_slice(&m.offset.to_le_bytes());
            buf.extend_from_slice(&m.timestamp_ms.to_le_bytes());
            buf.extend_from_slice(&m.append_time_ms.to_le_bytes());
            buf.push(m.priority);
            if let Some(at) = m.deliver_at_ms {
                buf.extend_from_slice(&at.to_le_bytes());
            }
            if let Some(ttl) = m.ttl {
                put_duration(&mut buf, ttl);
            }
            if let Some(key) = &m.key {
                put_bytes(&mut buf, key);
            }
            put_bytes(&mut buf, &m.value);
            put_headers(&mut buf, &m.headers);
        }
        Packed::finish(buf)
    }

    /// Send outcomes, in order; the failed ones also come in full, in order, beside the buffer.
    pub fn completions(completions: Vec<core::Completion>) -> (Packed, Vec<SendCompletion>) {
        let mut buf = Packed::with_capacity(4 + completions.len() * 24);
        let mut failed = Vec::new();
        put_len(&mut buf, completions.len());
        for completion in completions {
            buf.extend_from_slice(&completion.token.to_le_bytes());
            match completion.result {
                Ok(delivery) => {
                    let delivery = Delivery::from(delivery);
                    buf.push(DELIVERED);
                    buf.extend_from_slice(&delivery.partition.to_le_bytes());
                    buf.push(u8::from(delivery.offset.is_some()));
                    buf.extend_from_slice(&delivery.offset.unwrap_or(0).to_le_bytes());
                    buf.push(status_index(delivery.status));
                    buf.push(durability_index(delivery.durability));
                }
                Err(err) => {
                    buf.push(FAILED);
                    failed.push(SendCompletion {
                        id: completion.token,
                        delivery: None,
                        error: Some(err.into()),
                    });
                }
            }
        }
        (Packed::finish(buf), failed)
    }

    /// The packed bytes, without the length in front.
    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.0[4..]
    }
}

/// The index of `status`'s variant, as the Java facade reads it (`SendStatus.values()`).
fn status_index(status: SendStatus) -> u8 {
    match status {
        SendStatus::Appended => 0,
        SendStatus::Scheduled => 1,
        SendStatus::Deduplicated => 2,
    }
}

/// The index of `durability`'s variant, as the Java facade reads it (`Durability.values()`).
fn durability_index(durability: Durability) -> u8 {
    match durability {
        Durability::Unspecified => 0,
        Durability::Fsync => 1,
        Durability::Buffered => 2,
        Durability::Memory => 3,
    }
}

/// The messages of a batch packed by the facade, their bytes sharing `packed`'s buffer.
pub fn unpack_messages(packed: Bytes) -> Result<Vec<core::Message>, NativeError> {
    let mut r = Reader { buf: packed, at: 0 };
    let count = r.len()?;
    let mut messages = Vec::with_capacity(count.min(r.buf.len()));
    for _ in 0..count {
        let flags = r.u8()?;
        let key = if flags & OUT_KEY != 0 {
            Some(r.bytes()?)
        } else {
            None
        };
        let value = r.bytes()?;
        let headers = (0..r.len()?)
            .map(|_| Ok((r.string()?, r.bytes()?)))
            .collect::<Result<Vec<_>, NativeError>>()?;
        let timestamp_ms = (flags & OUT_TIMESTAMP != 0).then(|| r.i64()).transpose()?;
        let delay = (flags & OUT_DELAY != 0).then(|| r.duration()).transpose()?;
        let deliver_at_ms = (flags & OUT_DELIVER_AT != 0).then(|| r.i64()).transpose()?;
        let ttl = (flags & OUT_TTL != 0).then(|| r.duration()).transpose()?;
        let priority = r.u8()?;
        messages.push(core::Message {
            key,
            value,
            headers,
            timestamp_ms,
            delay,
            deliver_at_ms,
            ttl,
            priority,
        });
    }
    if r.at != r.buf.len() {
        return Err(malformed("bytes left after the last message"));
    }
    Ok(messages)
}

fn malformed(what: &str) -> NativeError {
    Error::InvalidArgument {
        message: format!("malformed packed messages: {what}"),
    }
    .into()
}

/// Reads the outgoing layout, every read bounds-checked.
struct Reader {
    buf: Bytes,
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<&[u8], NativeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| malformed("cut short"))?;
        let taken = &self.buf[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], NativeError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, NativeError> {
        Ok(self.array::<1>()?[0])
    }

    fn len(&mut self) -> Result<usize, NativeError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn i64(&mut self) -> Result<i64, NativeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn duration(&mut self) -> Result<Duration, NativeError> {
        let secs = u64::from_le_bytes(self.array()?);
        let nanos = u32::from_le_bytes(self.array()?);
        if nanos >= 1_000_000_000 {
            return Err(malformed("a duration's nanoseconds past a second"));
        }
        Ok(Duration::new(secs, nanos))
    }

    fn bytes(&mut self) -> Result<Bytes, NativeError> {
        let len = self.len()?;
        let start = self.at;
        self.take(len)?;
        Ok(self.buf.slice(start..start + len))
    }

    fn string(&mut self) -> Result<String, NativeError> {
        let len = self.len()?;
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| malformed("a header name is not UTF-8"))
    }
}

fn put_len(buf: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("a length of at most u32::MAX");
    buf.extend_from_slice(&len.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_len(buf, bytes.len());
    buf.extend_from_slice(bytes);
}

fn put_duration(buf: &mut Vec<u8>, d: Duration) {
    buf.extend_from_slice(&d.as_secs().to_le_bytes());
    buf.extend_from_slice(&d.subsec_nanos().to_le_bytes());
}

fn put_headers(buf: &mut Vec<u8>, headers: &[(String, Bytes)]) {
    put_len(buf, headers.len());
    for (name, value) in headers {
        put_bytes(buf, name.as_bytes());
        put_bytes(buf, value);
    }
}

// SAFETY: the wire form is exactly `Vec<u8>`'s (the metadata says so, and Java's generated
// `FfiConverterByteArray` reads it that way): the buffer holds the big-endian length first.
unsafe impl uniffi::FfiConverter<crate::UniFfiTag> for Packed {
    type FfiType = uniffi::RustBuffer;

    fn lower(obj: Packed) -> uniffi::RustBuffer {
        uniffi::RustBuffer::from_vec(obj.0)
    }

    fn try_lift(v: uniffi::RustBuffer) -> uniffi::Result<Packed> {
        let vec = v.destroy_into_vec();
        let mut buf = vec.as_slice();
        let packed = Self::try_read(&mut buf)?;
        if !buf.is_empty() {
            uniffi::deps::anyhow::bail!("junk data left in buffer after lifting packed messages");
        }
        Ok(packed)
    }

    fn write(obj: Packed, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&obj.0);
    }

    fn try_read(buf: &mut &[u8]) -> uniffi::Result<Packed> {
        uniffi::check_remaining(buf, 4)?;
        let len = usize::try_from(i32::from_be_bytes(buf[..4].try_into()?))?;
        uniffi::check_remaining(buf, 4 + len)?;
        let (packed, rest) = buf.split_at(4 + len);
        *buf = rest;
        Ok(Packed(packed.to_vec()))
    }

    const TYPE_ID_META: uniffi::MetadataBuffer =
        <Vec<u8> as uniffi::TypeId<crate::UniFfiTag>>::TYPE_ID_META;
}

uniffi::derive_ffi_traits!(local Packed);

#[cfg(test)]
mod tests {
    use uniffi::FfiConverter;

    use super::*;

    fn message(topic: &str, offset: u64) -> core::ReceivedMessage {
        core::ReceivedMessage {
            topic: topic.into(),
            partition: 2,
            offset,
            key: None,
            value: Bytes::from_static(b"v"),
            headers: vec![],
            timestamp_ms: -1,
            append_time_ms: 7,
            deliver_at_ms: None,
            ttl: None,
            priority: 0,
        }
    }

    #[test]
    fn a_message_with_every_field_has_the_documented_layout() {
        let m = core::ReceivedMessage {
            key: Some(Bytes::from_static(b"k")),
            headers: vec![("h".into(), Bytes::from_static(b"x"))],
            deliver_at_ms: Some(9),
            ttl: Some(Duration::new(3, 4)),
            priority: 5,
            ..message("t", 1)
        };
        let packed = Packed::received(&[m]);
        let mut want = vec![1, 0, 0, 0, TOPIC | KEY | DELIVER_AT | TTL, 1, 0, 0, 0, b't'];
        want.extend_from_slice(&2u32.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&(-1i64).to_le_bytes());
        want.extend_from_slice(&7i64.to_le_bytes());
        want.push(5);
        want.extend_from_slice(&9i64.to_le_bytes());
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(&4u32.to_le_bytes());
        want.extend_from_slice(&[1, 0, 0, 0, b'k', 1, 0, 0, 0, b'v', 1, 0, 0, 0]);
        want.extend_from_slice(&[1, 0, 0, 0, b'h', 1, 0, 0, 0, b'x']);
        assert_eq!(packed.bytes(), want);
    }

    #[test]
    fn the_topic_is_written_only_when_it_changes() {
        let packed = Packed::received(&[message("a", 1), message("a", 2), message("b", 3)]);
        let flags: Vec<u8> = [4, 4 + 44, 4 + 44 + 39]
            .iter()
            .map(|&at| packed.bytes()[at])
            .collect();
        assert_eq!(flags, [TOPIC, 0, TOPIC]);
        assert_eq!(packed.bytes().len(), 4 + 44 + 39 + 44);
    }

    #[test]
    fn outcomes_pack_deliveries_in_place_and_failures_beside() {
        let delivered = core::Completion {
            token: 7,
            result: Ok(core::Delivery {
                partition: 3,
                offset: Some(9),
                durability: core::Durability::Fsync,
                status: core::SendStatus::Appended,
            }),
        };
        let failed = core::Completion {
            token: 8,
            result: Err(Error::InvalidArgument {
                message: "no".into(),
            }),
        };
        let scheduled = core::Completion {
            token: 9,
            result: Ok(core::Delivery {
                partition: 0,
                offset: None,
                durability: core::Durability::Memory,
                status: core::SendStatus::Scheduled,
            }),
        };
        let (packed, failures) = Packed::completions(vec![delivered, failed, scheduled]);
        let mut want = 3u32.to_le_bytes().to_vec();
        want.extend_from_slice(&7u64.to_le_bytes());
        want.push(DELIVERED);
        want.extend_from_slice(&3u32.to_le_bytes());
        want.push(1);
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(&[0, 1]);
        want.extend_from_slice(&8u64.to_le_bytes());
        want.push(FAILED);
        want.extend_from_slice(&9u64.to_le_bytes());
        want.push(DELIVERED);
        want.extend_from_slice(&0u32.to_le_bytes());
        want.push(0);
        want.extend_from_slice(&0u64.to_le_bytes());
        want.extend_from_slice(&[1, 3]);
        assert_eq!(packed.bytes(), want);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].id, 8);
        assert_eq!(failures[0].error.as_ref().unwrap().name, "INVALID_ARGUMENT");
    }

    /// The outgoing layout, as `io.rapidmq.Packed.outgoing` writes it.
    fn pack_outgoing(messages: &[core::Message]) -> Bytes {
        let mut buf = Vec::new();
        put_len(&mut buf, messages.len());
        for m in messages {
            let flags = [
                (m.key.is_some(), OUT_KEY),
                (m.timestamp_ms.is_some(), OUT_TIMESTAMP),
                (m.delay.is_some(), OUT_DELAY),
                (m.deliver_at_ms.is_some(), OUT_DELIVER_AT),
                (m.ttl.is_some(), OUT_TTL),
            ];
            buf.push(flags.iter().filter(|(set, _)| *set).map(|(_, f)| f).sum());
            if let Some(key) = &m.key {
                put_bytes(&mut buf, key);
            }
            put_bytes(&mut buf, &m.value);
            put_headers(&mut buf, &m.headers);
            if let Some(t) = m.timestamp_ms {
                buf.extend_from_slice(&t.to_le_bytes());
            }
            if let Some(d) = m.delay {
                put_duration(&mut buf, d);
            }
            if let Some(t) = m.deliver_at_ms {
                buf.extend_from_slice(&t.to_le_bytes());
            }
            if let Some(d) = m.ttl {
                put_duration(&mut buf, d);
            }
            buf.push(m.priority);
        }
        Bytes::from(buf)
    }

    #[test]
    fn outgoing_messages_unpack_with_every_field_and_share_the_buffer() {
        let full = core::Message {
            key: Some(Bytes::from_static(b"key")),
            value: Bytes::from_static(b"value"),
            headers: vec![
                ("a".into(), Bytes::from_static(b"1")),
                ("a".into(), Bytes::new()),
            ],
            timestamp_ms: Some(-5),
            delay: Some(Duration::new(1, 2)),
            deliver_at_ms: Some(6),
            ttl: Some(Duration::new(3, 999_999_999)),
            priority: 9,
        };
        let plain = core::Message {
            key: Some(Bytes::new()),
            value: Bytes::new(),
            headers: vec![],
            timestamp_ms: None,
            delay: None,
            deliver_at_ms: None,
            ttl: None,
            priority: 0,
        };
        let packed = pack_outgoing(&[full.clone(), plain.clone()]);
        let unpacked = unpack_messages(packed.clone()).unwrap();
        assert_eq!(unpacked, [full, plain]);
        let value = &unpacked[0].value;
        assert!(
            packed.as_ptr_range().contains(&value.as_ptr()),
            "a slice, not a copy"
        );
        assert!(unpack_messages(pack_outgoing(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_malformed_outgoing_buffer_is_an_invalid_argument() {
        let m = core::Message {
            key: None,
            value: Bytes::from_static(b"v"),
            headers: vec![("h".into(), Bytes::new())],
            timestamp_ms: None,
            delay: Some(Duration::from_secs(1)),
            deliver_at_ms: None,
            ttl: None,
            priority: 0,
        };
        let packed = pack_outgoing(std::slice::from_ref(&m));
        for cut in 0..packed.len() {
            let err = unpack_messages(packed.slice(..cut)).expect_err("cut short");
            assert!(
                matches!(&err, NativeError::Failure { name, .. } if name == "INVALID_ARGUMENT"),
                "{err:?}"
            );
        }
        let mut longer = packed.to_vec();
        longer.push(0);
        assert!(unpack_messages(Bytes::from(longer)).is_err());
        let mut bad_name = packed.to_vec();
        let at = bad_name.iter().position(|&b| b == b'h').unwrap();
        bad_name[at] = 0xff;
        assert!(unpack_messages(Bytes::from(bad_name)).is_err());
        let mut bad_nanos = packed.to_vec();
        let len = bad_nanos.len();
        bad_nanos[len - 5..len - 1].copy_from_slice(&1_000_000_000u32.to_le_bytes());
        assert!(unpack_messages(Bytes::from(bad_nanos)).is_err());
        let mut huge_count = packed.to_vec();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack_messages(Bytes::from(huge_count)).is_err());
    }

    #[test]
    fn it_crosses_with_the_wire_form_of_a_vec_of_bytes() {
        let packed = Packed::received(&[message("a", 1)]);
        let as_vec = packed.bytes().to_vec();
        let mut written = Vec::new();
        <Packed as FfiConverter<crate::UniFfiTag>>::write(packed.clone(), &mut written);
        let mut want = Vec::new();
        <Vec<u8> as uniffi::Lower<crate::UniFfiTag>>::write(as_vec, &mut want);
        assert_eq!(written, want);
        let lifted =
            <Packed as FfiConverter<crate::UniFfiTag>>::try_lift(<Packed as FfiConverter<
                crate::UniFfiTag,
            >>::lower(
                packed.clone()
            ))
            .unwrap();
        assert_eq!(lifted, packed);
        let mut short = &written[..written.len() - 1];
        assert!(<Packed as FfiConverter<crate::UniFfiTag>>::try_read(&mut short).is_err());
    }
}
