//! A poll's messages packed into one buffer for the Java facade, which reads it in
//! `io.rapidmq.Packed`.
//!
//! uniffi's generated code reads a `Vec<ReceivedMessage>` field by field through its generic
//! converters: for every message it decodes the topic into a new `String` and builds the header
//! list through a stream, and a profile of the Java consumer put most of its time there. A
//! [`PackedMessages`] crosses as one `byte[]`; the facade builds the same `ReceivedMessage`
//! records from it, sharing one topic `String` and one empty header list among the messages.
//!
//! The layout, little-endian; lengths are `u32` byte counts and strings UTF-8:
//!
//! ```text
//! u32 count
//! per message:
//!   u8  flags                    TOPIC 1, KEY 2, DELIVER_AT 4, TTL 8
//!   [u32 len, topic]             when TOPIC: the first message, or a topic other than the last
//!   u32 partition, u64 offset, i64 timestamp_ms, i64 append_time_ms, u8 priority
//!   [i64 deliver_at_ms]          when DELIVER_AT
//!   [u64 seconds, u32 nanos]     when TTL
//!   [u32 len, key]               when KEY
//!   u32 len, value
//!   u32 headers, then for each: u32 len, name, u32 len, value
//! ```

use rapidmq_core as core;

/// The topic differs from the previous message's (always set on the first).
pub const TOPIC: u8 = 1;
/// A key follows.
pub const KEY: u8 = 2;
/// A delivery time follows.
pub const DELIVER_AT: u8 = 4;
/// A time to live follows.
pub const TTL: u8 = 8;

/// Messages in the layout above: `byte[]` in Java. The buffer starts with the big-endian `i32`
/// length of what follows, the wire form of a `Vec<u8>`, so it crosses without another copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedMessages(Vec<u8>);

/// Bytes of a message besides its topic, key, value and headers, at most: flags, partition,
/// offset, two times, priority, delivery time, time to live, and the key, value and header
/// counts.
const FIXED: usize = 1 + 4 + 8 + 8 + 8 + 1 + 8 + 12 + 4 + 4 + 4;

impl PackedMessages {
    /// Packs `messages` in order.
    pub fn encode(messages: &[core::ReceivedMessage]) -> PackedMessages {
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
        let mut buf = Vec::with_capacity(8 + first_topic + size);
        buf.extend_from_slice(&[0; 4]);
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
                buf.extend_from_slice(&ttl.as_secs().to_le_bytes());
                buf.extend_from_slice(&ttl.subsec_nanos().to_le_bytes());
            }
            if let Some(key) = &m.key {
                put_bytes(&mut buf, key);
            }
            put_bytes(&mut buf, &m.value);
            put_len(&mut buf, m.headers.len());
            for (name, value) in &m.headers {
                put_bytes(&mut buf, name.as_bytes());
                put_bytes(&mut buf, value);
            }
        }
        let len = i32::try_from(buf.len() - 4).expect("a poll of at most i32::MAX bytes");
        buf[..4].copy_from_slice(&len.to_be_bytes());
        PackedMessages(buf)
    }

    /// The packed bytes, without the length in front.
    #[cfg(test)]
    fn bytes(&self) -> &[u8] {
        &self.0[4..]
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

// SAFETY: the wire form is exactly `Vec<u8>`'s (the metadata says so, and Java's generated
// `FfiConverterByteArray` reads it that way): the buffer holds the big-endian length first.
unsafe impl uniffi::FfiConverter<crate::UniFfiTag> for PackedMessages {
    type FfiType = uniffi::RustBuffer;

    fn lower(obj: PackedMessages) -> uniffi::RustBuffer {
        uniffi::RustBuffer::from_vec(obj.0)
    }

    fn try_lift(v: uniffi::RustBuffer) -> uniffi::Result<PackedMessages> {
        let vec = v.destroy_into_vec();
        let mut buf = vec.as_slice();
        let packed = Self::try_read(&mut buf)?;
        if !buf.is_empty() {
            uniffi::deps::anyhow::bail!("junk data left in buffer after lifting packed messages");
        }
        Ok(packed)
    }

    fn write(obj: PackedMessages, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&obj.0);
    }

    fn try_read(buf: &mut &[u8]) -> uniffi::Result<PackedMessages> {
        uniffi::check_remaining(buf, 4)?;
        let len = usize::try_from(i32::from_be_bytes(buf[..4].try_into()?))?;
        uniffi::check_remaining(buf, 4 + len)?;
        let (packed, rest) = buf.split_at(4 + len);
        *buf = rest;
        Ok(PackedMessages(packed.to_vec()))
    }

    const TYPE_ID_META: uniffi::MetadataBuffer =
        <Vec<u8> as uniffi::TypeId<crate::UniFfiTag>>::TYPE_ID_META;
}

uniffi::derive_ffi_traits!(local PackedMessages);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
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
        let packed = PackedMessages::encode(&[m]);
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
        let packed = PackedMessages::encode(&[message("a", 1), message("a", 2), message("b", 3)]);
        let flags: Vec<u8> = [4, 4 + 44, 4 + 44 + 39]
            .iter()
            .map(|&at| packed.bytes()[at])
            .collect();
        assert_eq!(flags, [TOPIC, 0, TOPIC]);
        assert_eq!(packed.bytes().len(), 4 + 44 + 39 + 44);
    }

    #[test]
    fn it_crosses_with_the_wire_form_of_a_vec_of_bytes() {
        let packed = PackedMessages::encode(&[message("a", 1)]);
        let as_vec = packed.bytes().to_vec();
        let mut written = Vec::new();
        <PackedMessages as FfiConverter<crate::UniFfiTag>>::write(packed.clone(), &mut written);
        let mut want = Vec::new();
        <Vec<u8> as uniffi::Lower<crate::UniFfiTag>>::write(as_vec, &mut want);
        assert_eq!(written, want);
        let lifted = <PackedMessages as FfiConverter<crate::UniFfiTag>>::try_lift(
            <PackedMessages as FfiConverter<crate::UniFfiTag>>::lower(packed.clone()),
        )
        .unwrap();
        assert_eq!(lifted, packed);
        let mut short = &written[..written.len() - 1];
        assert!(<PackedMessages as FfiConverter<crate::UniFfiTag>>::try_read(&mut short).is_err());
    }
}
