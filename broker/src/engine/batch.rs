//! Stored batches: validation of a producer's encoded `MessageBatch`, and the small header the
//! broker puts in front of it.
//!
//! The broker never re-encodes a batch. It walks the protobuf wire format once to count messages
//! and check limits (no allocation, no payload copies), exactly as strictly as prost decodes it
//! (a batch that is stored must be readable by every consumer), then stores
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
use rapidmq_proto::batch::BatchError;

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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// The most a compressed batch's messages may expand to (`limits.max_request_bytes`: no
    /// more than the same batch sent plain could hold).
    pub max_batch_bytes: usize,
    pub now_ms: i64,
    /// Latest allowed due time is `now_ms + max_delay_ms`.
    pub max_delay_ms: u64,
}

pub use rapidmq_proto::{MSG_ID_HEADER, TRACEPARENT_HEADER};

/// Per-batch index entry: message count, append time and stored size, and for a replicated
/// partition where the batch lives in the raft log.
///
/// Encoded as 16 bytes (`count u32 | append time i64 | stored len u32`), the single-node layout,
/// or 32 when the batch is stored once, as its raft log entry (`... | group u64 | raft index
/// u64`): the batch is then not in `Cf::Log` (docs/adr/0005-clustering.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub count: u32,
    pub append_time_ms: i64,
    /// What the batch would occupy as a `Cf::Log` value (header and payload), wherever it lives.
    pub stored_len: u32,
    /// Where a replicated partition's batch lives: `None` when it is in `Cf::Log`.
    pub raft: Option<RaftLocation>,
}

/// The raft log entry holding a batch: key `group | index` in `Cf::RaftLog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftLocation {
    pub group: u64,
    pub index: u64,
}

impl IndexEntry {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(32);
        buf.put_u32(self.count);
        buf.put_i64(self.append_time_ms);
        buf.put_u32(self.stored_len);
        if let Some(raft) = self.raft {
            buf.put_u64(raft.group);
            buf.put_u64(raft.index);
        }
        buf.freeze()
    }

    pub fn decode(mut value: &[u8]) -> Result<IndexEntry> {
        if value.len() != 16 && value.len() != 32 {
            return Err(Error::internal("index entry has an unknown format"));
        }
        let mut entry = IndexEntry {
            count: value.get_u32(),
            append_time_ms: value.get_i64(),
            stored_len: value.get_u32(),
            raft: None,
        };
        if value.has_remaining() {
            entry.raft = Some(RaftLocation {
                group: value.get_u64(),
                index: value.get_u64(),
            });
        }
        Ok(entry)
    }
}

/// prost's recursion budget (`prost::RECURSION_LIMIT`, private to prost): a field nested deeper
/// than this in messages and groups does not decode, so it does not validate either.
const RECURSION_LIMIT: u32 = 100;

/// Checks that `batch` is an encoded `MessageBatch` with at least one message, each message at
/// most `max_message_bytes` long (its encoded size: key, value, headers and framing), priorities
/// 0–9, due times within the horizon, no negative TTL, producer timestamps
/// (`base_timestamp_ms + timestamp_delta_ms`) that fit in an `i64`, and no compression the broker
/// does not know. A compressed batch is decompressed (to at most `max_batch_bytes`) and its
/// messages walked the same way; the compressed bytes are what is stored.
///
/// The walk is exactly as strict as prost's decoder of the same message: every batch accepted
/// here decodes with [`rapidmq_proto::batch::decode`] (consumers and the queue, TTL and REST
/// readers decode what is stored), and every batch that decodes and passes the checks above is
/// accepted. That means prost's rules throughout: a known field with the wrong wire type is an
/// error; unknown fields (groups included) are skipped, up to prost's nesting limit; header keys
/// are UTF-8; a repeated scalar takes its last value; varints longer than 10 bytes or above
/// `u64::MAX` are errors. `broker/tests/batch_validator_matches_prost.rs` holds the two to that.
pub fn validate(batch: &[u8], limits: &Limits) -> Result<BatchSummary> {
    let mut walk = Walk::default();
    let mut buf = batch;
    let mut base_timestamp_ms: i64 = 0;
    let mut compression: i32 = 0;
    let mut compressed: &[u8] = &[];
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
        match tag {
            1 => walk.message(
                delimited(&mut buf, wire_type, "MessageBatch.messages")?,
                limits,
            )?,
            2 => {
                base_timestamp_ms =
                    varint_field(&mut buf, wire_type, "MessageBatch.base_timestamp_ms")? as i64
            }
            3 => {
                compression = varint_field(&mut buf, wire_type, "MessageBatch.compression")? as i32
            }
            4 => compressed = delimited(&mut buf, wire_type, "MessageBatch.compressed")?,
            _ => skip_unknown(&mut buf, tag, wire_type, RECURSION_LIMIT)?,
        }
    }
    if compression != 0 {
        let codec = rapidmq_proto::batch::compression(compression)
            .map_err(|err| Error::invalid(format!("the batch has an {err}")))?;
        if walk.count > 0 {
            return Err(Error::invalid(BatchError::Mixed.to_string()));
        }
        let inner = rapidmq_proto::batch::decompress(codec, compressed, limits.max_batch_bytes)
            .map_err(|err| match err {
                BatchError::TooLarge { .. } => Error::new(
                    ErrorCode::MessageTooLarge,
                    format!(
                        "the batch's {codec:?}-compressed messages expand to more than {} bytes \
                         (limits.max_request_bytes)",
                        limits.max_batch_bytes
                    ),
                ),
                err => Error::malformed(err.to_string()),
            })?;
        walk.compressed_messages(&inner, limits)?;
    }
    let Walk {
        mut summary,
        count,
        deltas,
    } = walk;
    if count == 0 {
        return Err(Error::new(
            ErrorCode::EmptyBatch,
            "the batch holds no messages",
        ));
    }
    if let Some((lowest, highest)) = deltas
        && (base_timestamp_ms.checked_add(lowest).is_none()
            || base_timestamp_ms.checked_add(highest).is_none())
    {
        return Err(Error::invalid(format!(
            "base_timestamp_ms {base_timestamp_ms} plus a message's timestamp_delta_ms is out of \
             the range of a 64-bit timestamp"
        )));
    }
    summary.count = count;
    Ok(summary)
}

/// What a walk over a batch's messages has seen so far.
#[derive(Default)]
struct Walk {
    summary: BatchSummary,
    count: u32,
    /// Lowest and highest `timestamp_delta_ms` of the batch's messages.
    deltas: Option<(i64, i64)>,
}

impl Walk {
    /// Checks one encoded `Message` (a `MessageBatch.messages` record's body).
    fn message(&mut self, body: &[u8], limits: &Limits) -> Result<()> {
        let count = self.count;
        if body.len() > limits.max_message_bytes as usize {
            return Err(Error::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "message {count} of the batch is {} bytes; the topic allows at most {}",
                    body.len(),
                    limits.max_message_bytes
                ),
            ));
        }
        let fields = MessageFields::read(body, RECURSION_LIMIT - 1)?;
        fields.check(count, limits, &mut self.summary)?;
        let delta = fields.timestamp_delta_ms;
        self.deltas = Some(
            self.deltas
                .map_or((delta, delta), |(lo, hi)| (lo.min(delta), hi.max(delta))),
        );
        self.count = count
            .checked_add(1)
            .ok_or_else(|| Error::malformed("too many messages in one batch"))?;
        Ok(())
    }

    /// Checks the decompressed messages of a compressed batch: an encoded `MessageBatch` whose
    /// messages count and the rest of whose fields readers ignore, but which must decode as
    /// strictly as prost decodes it ([`rapidmq_proto::batch::decode`]).
    fn compressed_messages(&mut self, inner: &[u8], limits: &Limits) -> Result<()> {
        let mut buf = inner;
        while buf.has_remaining() {
            let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
            match tag {
                1 => self.message(
                    delimited(&mut buf, wire_type, "MessageBatch.messages")?,
                    limits,
                )?,
                2 => {
                    varint_field(&mut buf, wire_type, "MessageBatch.base_timestamp_ms")?;
                }
                3 => {
                    varint_field(&mut buf, wire_type, "MessageBatch.compression")?;
                }
                4 => {
                    delimited(&mut buf, wire_type, "MessageBatch.compressed")?;
                }
                _ => skip_unknown(&mut buf, tag, wire_type, RECURSION_LIMIT)?,
            }
        }
        Ok(())
    }
}

/// The fields of one `Message` the broker checks, as prost decodes them: the last occurrence of
/// a field wins, and numbers narrow as prost narrows them.
#[derive(Debug, Default)]
struct MessageFields {
    value_len: u64,
    timestamp_delta_ms: i64,
    deliver_at_ms: i64,
    ttl_ms: i64,
    priority: u32,
    delay_ms: u64,
    msg_id: bool,
    traceparent: bool,
}

impl MessageFields {
    /// Walks one encoded `Message`; `depth` is prost's recursion budget inside it.
    fn read(mut buf: &[u8], depth: u32) -> Result<MessageFields> {
        let mut fields = MessageFields::default();
        while buf.has_remaining() {
            let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
            match tag {
                1 => {
                    delimited(&mut buf, wire_type, "Message.key")?;
                }
                2 => {
                    fields.value_len = delimited(&mut buf, wire_type, "Message.value")?.len() as u64
                }
                3 => {
                    let header = delimited(&mut buf, wire_type, "Message.headers")?;
                    match header_kind(header, depth - 1)? {
                        HeaderKind::MsgId => fields.msg_id = true,
                        HeaderKind::Traceparent => fields.traceparent = true,
                        HeaderKind::Other => {}
                    }
                }
                4 => {
                    fields.timestamp_delta_ms =
                        varint_field(&mut buf, wire_type, "Message.timestamp_delta_ms")? as i64
                }
                5 => {
                    fields.deliver_at_ms =
                        varint_field(&mut buf, wire_type, "Message.deliver_at_ms")? as i64
                }
                6 => fields.ttl_ms = varint_field(&mut buf, wire_type, "Message.ttl_ms")? as i64,
                7 => {
                    fields.priority = varint_field(&mut buf, wire_type, "Message.priority")? as u32
                }
                8 => fields.delay_ms = varint_field(&mut buf, wire_type, "Message.delay_ms")?,
                _ => skip_unknown(&mut buf, tag, wire_type, depth)?,
            }
        }
        Ok(fields)
    }

    /// Checks message `index` against the limits and adds what it says to `summary`.
    fn check(&self, index: u32, limits: &Limits, summary: &mut BatchSummary) -> Result<()> {
        let out_of_range = |what: &str| {
            Error::new(
                ErrorCode::DeliverAtOutOfRange,
                format!(
                    "message {index}: {what} is beyond the broker's horizon of {} ms from now",
                    limits.max_delay_ms
                ),
            )
        };
        if self.ttl_ms < 0 {
            return Err(Error::invalid(format!(
                "message {index} has a negative ttl_ms"
            )));
        }
        if u64::from(self.priority) > MAX_PRIORITY {
            return Err(Error::new(
                ErrorCode::InvalidPriority,
                format!(
                    "message {index} has priority {}; priorities run from 0 to {MAX_PRIORITY}",
                    self.priority
                ),
            ));
        }
        if self.deliver_at_ms > limits.horizon_ms() {
            return Err(out_of_range("deliver_at_ms"));
        }
        if self.delay_ms > limits.max_delay_ms {
            return Err(out_of_range("delay_ms"));
        }
        summary.scheduled |= self.deliver_at_ms != 0 || self.delay_ms != 0;
        summary.ttl |= self.ttl_ms > 0;
        summary.msg_ids |= self.msg_id;
        summary.traced |= self.msg_id || self.traceparent;
        summary.value_bytes += self.value_len;
        Ok(())
    }
}

impl Limits {
    /// The latest due time a message may ask for.
    fn horizon_ms(&self) -> i64 {
        self.now_ms
            .saturating_add(i64::try_from(self.max_delay_ms).unwrap_or(i64::MAX))
    }
}

/// The headers the broker looks for.
enum HeaderKind {
    MsgId,
    Traceparent,
    Other,
}

/// Walks one encoded `Header` (prost's recursion budget inside it is `depth`) and says whether
/// it is a `msg-id` or `traceparent` header. Like prost, every occurrence of the key must be
/// UTF-8 and the last one counts.
fn header_kind(mut buf: &[u8], depth: u32) -> Result<HeaderKind> {
    let mut kind = HeaderKind::Other;
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).map_err(malformed)?;
        match tag {
            1 => {
                let key = delimited(&mut buf, wire_type, "Header.key")?;
                let key = std::str::from_utf8(key)
                    .map_err(|_| Error::malformed("a header key is not valid UTF-8"))?;
                kind = match key {
                    MSG_ID_HEADER => HeaderKind::MsgId,
                    TRACEPARENT_HEADER => HeaderKind::Traceparent,
                    _ => HeaderKind::Other,
                };
            }
            2 => {
                delimited(&mut buf, wire_type, "Header.value")?;
            }
            _ => skip_unknown(&mut buf, tag, wire_type, depth)?,
        }
    }
    Ok(kind)
}

/// The body of a length-delimited field (bytes, string or message) named `field`, which must
/// have that wire type.
fn delimited<'a>(buf: &mut &'a [u8], wire_type: WireType, field: &str) -> Result<&'a [u8]> {
    expect(wire_type, WireType::LengthDelimited, field)?;
    let len = length(buf)?;
    let (body, rest) = buf.split_at(len);
    *buf = rest;
    Ok(body)
}

/// The value of a varint field named `field`, which must have that wire type.
fn varint_field(buf: &mut &[u8], wire_type: WireType, field: &str) -> Result<u64> {
    expect(wire_type, WireType::Varint, field)?;
    decode_varint(buf).map_err(malformed)
}

fn expect(actual: WireType, expected: WireType, field: &str) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::malformed(format!(
            "batch is not a valid MessageBatch: {field} has wire type {actual:?}, not {expected:?}"
        )))
    }
}

fn length(buf: &mut &[u8]) -> Result<usize> {
    let len = decode_varint(buf).map_err(malformed)?;
    if len > buf.remaining() as u64 {
        return Err(Error::malformed("batch is truncated"));
    }
    Ok(len as usize)
}

/// Skips an unknown field as prost does: groups are walked to their matching end (`depth` is
/// prost's recursion budget here), a lone end-group is an error.
fn skip_unknown(buf: &mut &[u8], tag: u32, wire_type: WireType, depth: u32) -> Result<()> {
    if depth == 0 {
        return Err(Error::malformed(
            "batch is not a valid MessageBatch: fields are nested too deeply",
        ));
    }
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
        WireType::StartGroup => loop {
            let (inner_tag, inner_wire_type) = decode_key(buf).map_err(malformed)?;
            if inner_wire_type == WireType::EndGroup {
                if inner_tag != tag {
                    return Err(Error::malformed(
                        "batch is not a valid MessageBatch: a group ends with the wrong tag",
                    ));
                }
                break;
            }
            skip_unknown(buf, inner_tag, inner_wire_type, depth - 1)?;
        },
        WireType::EndGroup => {
            return Err(Error::malformed(
                "batch is not a valid MessageBatch: a group ends that never started",
            ));
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
/// slice indexing (no decoding, no copies); stops quietly at anything malformed. A compressed
/// batch is decompressed first: its bytes out are the values delivered, as for any other.
pub fn value_bytes(batch: &[u8], first: u32, count: u32) -> u64 {
    let end = first.saturating_add(count);
    let mut at = 0;
    let mut index = 0u32;
    let mut total = 0u64;
    let mut compression = 0;
    let mut compressed = 0..0;
    while at < batch.len() && index < end {
        let Some((key, next)) = varint(batch, at) else {
            break;
        };
        at = next;
        if key == (1 << 3) | 2 || key == (4 << 3) | 2 {
            let Some((len, body)) = varint(batch, at) else {
                break;
            };
            let stop = body.saturating_add(len as usize).min(batch.len());
            if key == (4 << 3) | 2 {
                compressed = body..stop;
            } else {
                if index >= first {
                    total += message_value_len(&batch[body..stop]);
                }
                index += 1;
            }
            at = stop;
        } else {
            if key == 3 << 3
                && let Some((value, _)) = varint(batch, at)
            {
                compression = value as i32;
            }
            match skip_field(batch, at, key) {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    if compression != 0
        && index == 0
        && let Ok(codec) = rapidmq_proto::batch::compression(compression)
        && let Ok(inner) = rapidmq_proto::batch::decompress(
            codec,
            &batch[compressed],
            rapidmq_proto::batch::MAX_DECOMPRESSED_BYTES,
        )
    {
        return value_bytes(&inner, first, count);
    }
    total
}

/// The length of a message's value: like prost, the last occurrence of the field counts.
fn message_value_len(message: &[u8]) -> u64 {
    let mut at = 0;
    let mut value_len = 0;
    while at < message.len() {
        let Some((key, next)) = varint(message, at) else {
            break;
        };
        if key == (2 << 3) | 2 {
            let Some((len, _)) = varint(message, next) else {
                break;
            };
            value_len = len;
        }
        match skip_field(message, next, key) {
            Some(after) => at = after,
            None => break,
        }
    }
    value_len
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

/// The index after the value of a field with `key` whose value starts at `at` (for a group: after
/// its end-group key).
fn skip_field(buf: &[u8], at: usize, key: u64) -> Option<usize> {
    match key & 7 {
        0 => varint(buf, at).map(|(_, next)| next),
        1 => Some(at.saturating_add(8)),
        2 => varint(buf, at).map(|(len, next)| next.saturating_add(len as usize)),
        3 => {
            let mut at = at;
            loop {
                let (inner, next) = varint(buf, at)?;
                if inner & 7 == 4 {
                    return (inner >> 3 == key >> 3).then_some(next);
                }
                at = skip_field(buf, next, inner)?;
            }
        }
        5 => Some(at.saturating_add(4)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use rapidmq_proto::v1::{Compression, Header, Message, MessageBatch};

    fn limits(max_message_bytes: u32) -> Limits {
        Limits {
            max_message_bytes,
            max_batch_bytes: 1 << 20,
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
                    key: Some(Bytes::from_static(b"key")),
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
                    key: Some(Bytes::from_static(b"k")),
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
            ..Default::default()
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

    /// The batch of issue 15: a TTL message, then `base_timestamp_ms` (a varint field) sent as
    /// length-delimited bytes. prost refuses it, so the broker must too.
    const WRONG_WIRE_TYPE: [u8; 12] = [
        0x0a, 0x08, 0x12, 0x01, 0x41, 0x30, 0x80, 0xdd, 0xdb, 0x01, 0x12, 0x00,
    ];

    #[test]
    fn a_known_field_with_the_wrong_wire_type_is_malformed_as_prost_says() {
        assert!(MessageBatch::decode(&WRONG_WIRE_TYPE[..]).is_err());
        let err = validate(&WRONG_WIRE_TYPE, &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedRequest);
        assert!(err.message().contains("base_timestamp_ms"), "{err}");
    }

    #[test]
    fn unknown_fields_and_groups_are_skipped_as_prost_skips_them() {
        let mut encoded = batch(&[b"v"]);
        // Field 9 as a group holding a varint field, then field 10 as fixed32.
        encoded.extend_from_slice(&[0x4b, 0x08, 0x01, 0x4c, 0x55, 1, 2, 3, 4]);
        assert!(MessageBatch::decode(&encoded[..]).is_ok());
        assert_eq!(validate(&encoded, &limits(1024)).unwrap().count, 1);

        // An end-group with another tag, or without a start, does not decode.
        for bad in [&[0x4b, 0x54][..], &[0x4c][..]] {
            let mut encoded = batch(&[b"v"]);
            encoded.extend_from_slice(bad);
            assert!(MessageBatch::decode(&encoded[..]).is_err());
            let err = validate(&encoded, &limits(1024)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::MalformedRequest);
        }
    }

    #[test]
    fn a_repeated_scalar_counts_with_its_last_value() {
        // Priority 10 then priority 1: prost keeps 1.
        let message = [0x38, 10, 0x38, 1, 0x12, 0x01, b'x', 0x12, 0x02, b'y', b'z'];
        let mut encoded = vec![0x0a, message.len() as u8];
        encoded.extend_from_slice(&message);
        let decoded = MessageBatch::decode(&encoded[..]).unwrap();
        assert_eq!(decoded.messages[0].priority, 1);
        let summary = validate(&encoded, &limits(1024)).unwrap();
        assert_eq!(summary.value_bytes, 2);
        assert_eq!(value_bytes(&encoded, 0, 1), 2);
    }

    #[test]
    fn rejects_producer_timestamps_beyond_i64_and_unknown_compression() {
        let encoded = MessageBatch {
            messages: vec![Message {
                timestamp_delta_ms: 1,
                ..Default::default()
            }],
            base_timestamp_ms: i64::MAX,
            compression: 0,
            ..Default::default()
        }
        .encode_to_vec();
        let err = validate(&encoded, &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);

        let encoded = MessageBatch {
            messages: vec![Message::default()],
            base_timestamp_ms: 1,
            compression: 3,
            ..Default::default()
        }
        .encode_to_vec();
        let err = validate(&encoded, &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }

    fn compressed(messages: Vec<Message>, codec: Compression) -> Vec<u8> {
        let encoded = rapidmq_proto::batch::encode(messages, 1_700_000_000_000, codec);
        let raw = MessageBatch::decode(&encoded[..]).unwrap();
        assert_eq!(raw.compression, codec as i32, "the test batch compresses");
        encoded
    }

    fn json_like(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| Message {
                value: Bytes::from(format!(r#"{{"id":{i},"status":"ok","ttl":0}}"#)),
                ttl_ms: (i == 3) as i64 * 1000,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn compressed_batches_are_checked_message_by_message() {
        for codec in [Compression::Lz4, Compression::Zstd] {
            let summary = validate(&compressed(json_like(50), codec), &limits(1024)).unwrap();
            assert_eq!(summary.count, 50, "{codec:?}");
            assert!(summary.ttl, "{codec:?}: a TTL inside the frame is seen");
            assert_eq!(
                summary.value_bytes,
                json_like(50)
                    .iter()
                    .map(|m| m.value.len() as u64)
                    .sum::<u64>()
            );

            let mut bad = json_like(50);
            bad[7].priority = 12;
            let err = validate(&compressed(bad, codec), &limits(1024)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidPriority, "{codec:?}");
            assert!(err.to_string().contains("message 7"), "{err}");

            let err = validate(&compressed(json_like(50), codec), &limits(20)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::MessageTooLarge, "{codec:?}");
        }
    }

    #[test]
    fn compressed_batches_may_not_expand_past_the_request_limit() {
        let big = vec![Message {
            value: Bytes::from(vec![b'x'; 200_000]),
            ..Default::default()
        }];
        let mut small = limits(1 << 20);
        small.max_batch_bytes = 100_000;
        let err = validate(&compressed(big.clone(), Compression::Zstd), &small).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MessageTooLarge);
        assert!(err.to_string().contains("expand"), "{err}");
        assert!(validate(&compressed(big, Compression::Zstd), &limits(1 << 20)).is_ok());
    }

    #[test]
    fn corrupt_and_mixed_compressed_batches_are_refused() {
        let corrupt = MessageBatch {
            compression: Compression::Lz4 as i32,
            compressed: Bytes::from_static(b"\x04\x22\x4d\x18 truncated"),
            ..Default::default()
        }
        .encode_to_vec();
        let err = validate(&corrupt, &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedRequest);

        let mut mixed =
            MessageBatch::decode(&compressed(json_like(10), Compression::Lz4)[..]).unwrap();
        mixed.messages.push(Message::default());
        let err = validate(&mixed.encode_to_vec(), &limits(1024)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
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
