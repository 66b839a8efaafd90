//! The strict walk of a producer's encoded `MessageBatch` on publish: counts messages and checks
//! limits without allocating or copying payloads, exactly as strictly as prost decodes it.

use bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::batch::BatchError;

use super::{MAX_PRIORITY, MSG_ID_HEADER, TRACEPARENT_HEADER};
use crate::error::{Error, Result};

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
