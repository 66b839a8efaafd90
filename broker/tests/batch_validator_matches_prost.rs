//! Differential test: the broker's zero-copy batch validator (`engine::batch::validate`) accepts
//! exactly the batches that prost decodes and whose decoded values pass the broker's checks.
//!
//! A batch the validator accepts is stored as sent and later decoded by every reader (queue
//! consumers, TTL checks, REST, the client core); one prost refuses would poison its partition.
//! A batch prost decodes and the checks allow must not be refused as malformed either.
//!
//! Inputs come from four generators: arbitrary bytes; "wire soup" (protobuf fields with random
//! tags, wire types, nesting and groups, so known fields often have the wrong wire type);
//! valid batches with byte-level mutations; and valid batches against random limits.
//!
//! Each property runs `DEFAULT_CASES` cases (a few seconds in `make test`). For a long run:
//! `PROPTEST_CASES=1000000 cargo test -p rapidmq-broker --test batch_validator_matches_prost`.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use prost::Message as _;
use rapidmq_broker::engine::batch::{
    self, BatchSummary, Limits, MSG_ID_HEADER, TRACEPARENT_HEADER,
};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::batch::{self as batch_codec, BatchError};
use rapidmq_proto::v1::{Compression, Header, Message, MessageBatch};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 2_000;

const NOW_MS: i64 = 1_000_000;
const MAX_DELAY_MS: u64 = 10_000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// The most a compressed batch may expand to, small so generated frames cross it.
const MAX_BATCH_BYTES: usize = 4096;

fn limits(max_message_bytes: u32) -> Limits {
    Limits {
        max_message_bytes,
        max_batch_bytes: MAX_BATCH_BYTES,
        now_ms: NOW_MS,
        max_delay_ms: MAX_DELAY_MS,
    }
}

/// What the broker must answer for a batch, worked out from prost's decoding of it.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Accept(BatchSummary),
    /// prost decodes it, but a decoded value breaks a limit or rule.
    Refuse,
    /// prost does not decode it.
    Undecodable,
}

fn expected(bytes: &[u8], limits: &Limits) -> Expected {
    // What every reader of a stored batch decodes it with (decompressing compressed messages).
    let decoded =
        match batch_codec::decode_with_limit(Bytes::copy_from_slice(bytes), limits.max_batch_bytes)
        {
            Ok(decoded) => decoded,
            // The batch decodes, but names no codec, mixes plain and compressed messages, or
            // expands too far: refused, and not as malformed.
            Err(
                BatchError::UnknownCompression(_) | BatchError::Mixed | BatchError::TooLarge { .. },
            ) => {
                return Expected::Refuse;
            }
            Err(BatchError::Decode(_) | BatchError::Corrupt(_)) => return Expected::Undecodable,
        };
    let horizon = NOW_MS + MAX_DELAY_MS as i64;
    let mut summary = BatchSummary {
        count: decoded.messages.len() as u32,
        ..BatchSummary::default()
    };
    for m in &decoded.messages {
        let size_ok = m.encoded_len() <= limits.max_message_bytes as usize;
        let timestamp_ok = decoded
            .base_timestamp_ms
            .checked_add(m.timestamp_delta_ms)
            .is_some();
        if !size_ok
            || !timestamp_ok
            || m.ttl_ms < 0
            || m.priority > 9
            || m.deliver_at_ms > horizon
            || m.delay_ms > limits.max_delay_ms
        {
            return Expected::Refuse;
        }
        summary.scheduled |= m.deliver_at_ms != 0 || m.delay_ms != 0;
        summary.ttl |= m.ttl_ms > 0;
        let has = |name: &str| m.headers.iter().any(|h| h.key == name);
        summary.msg_ids |= has(MSG_ID_HEADER);
        summary.traced |= has(MSG_ID_HEADER) || has(TRACEPARENT_HEADER);
        summary.value_bytes += m.value.len() as u64;
    }
    if decoded.messages.is_empty() {
        return Expected::Refuse;
    }
    Expected::Accept(summary)
}

/// The property: the validator and prost (plus the checks) agree on `bytes`.
fn agree(bytes: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    let got = batch::validate(bytes, limits);
    match (expected(bytes, limits), got) {
        (Expected::Accept(summary), Ok(got)) => {
            prop_assert_eq!(got, summary);
            prop_assert_eq!(
                batch::value_bytes(bytes, 0, got.count),
                got.value_bytes,
                "the delivery byte count walks the batch as the validator does"
            );
        }
        (Expected::Refuse, Err(err)) => prop_assert_ne!(
            err.code(),
            ErrorCode::MalformedRequest,
            "prost decodes it, so it is not malformed: {}",
            err
        ),
        (Expected::Undecodable, Err(_)) => {}
        (expected, got) => {
            return Err(TestCaseError::fail(format!(
                "prost says {expected:?}, the validator {got:?}, for {bytes:02x?}"
            )));
        }
    }
    Ok(())
}

// ---- valid batches ----

fn interesting_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        -3i64..3,
        NOW_MS..NOW_MS + 2 * MAX_DELAY_MS as i64,
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>(),
    ]
}

fn small_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..6).prop_map(Bytes::from)
}

fn header_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(MSG_ID_HEADER.to_string()),
        Just(TRACEPARENT_HEADER.to_string()),
        Just("h".to_string()),
        vec(any::<char>(), 0..3).prop_map(String::from_iter),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (header_key(), small_bytes()).prop_map(|(key, value)| Header { key, value })
}

fn message() -> impl Strategy<Value = Message> {
    (
        (
            option::of(small_bytes()),
            small_bytes(),
            vec(header(), 0..3),
        ),
        (interesting_i64(), interesting_i64(), interesting_i64()),
        prop_oneof![0u32..12, any::<u32>()],
        prop_oneof![Just(0u64), 0..2 * MAX_DELAY_MS, any::<u64>()],
    )
        .prop_map(
            |(
                (key, value, headers),
                (timestamp_delta_ms, deliver_at_ms, ttl_ms),
                priority,
                delay_ms,
            )| {
                Message {
                    key,
                    value,
                    headers,
                    timestamp_delta_ms,
                    deliver_at_ms,
                    ttl_ms,
                    priority,
                    delay_ms,
                }
            },
        )
}

/// Valid batches, plain or (as producers send them) with their messages in a compressed frame;
/// now and then a compression value with the messages left plain, or an unknown one.
fn message_batch() -> impl Strategy<Value = MessageBatch> {
    (
        vec(message(), 0..4),
        interesting_i64(),
        prop_oneof![3 => Just(0i32), 1 => Just(1), 1 => Just(2), 1 => any::<i32>()],
        prop_oneof![4 => Just(true), 1 => Just(false)],
    )
        .prop_map(|(messages, base_timestamp_ms, compression, pack)| {
            match Compression::try_from(compression) {
                Ok(codec) if codec != Compression::None && pack => {
                    let inner = MessageBatch {
                        messages,
                        ..Default::default()
                    };
                    MessageBatch {
                        base_timestamp_ms,
                        compression,
                        compressed: Bytes::from(batch_codec::compress(
                            codec,
                            &inner.encode_to_vec(),
                        )),
                        ..Default::default()
                    }
                }
                _ => MessageBatch {
                    messages,
                    base_timestamp_ms,
                    compression,
                    ..Default::default()
                },
            }
        })
}

// ---- wire soup: raw protobuf fields ----

#[derive(Debug, Clone)]
enum Field {
    Varint(u32, u64),
    Fixed64(u32, u64),
    Fixed32(u32, u32),
    Bytes(u32, Vec<u8>),
    Nested(u32, Vec<Field>),
    Group(u32, Vec<Field>),
    /// A group whose end tag may not match its start.
    BadGroup(u32, u32),
    /// Arbitrary bytes: broken keys, varints, truncations.
    Raw(Vec<u8>),
}

fn tag() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1u32..9, 1 => Just(0u32), 1 => 9u32..20, 1 => any::<u32>()]
}

fn varint_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..12,
        Just(u64::MAX),
        Just(u64::from(u32::MAX) + 1),
        any::<u64>()
    ]
}

fn field() -> impl Strategy<Value = Field> {
    let leaf = prop_oneof![
        (tag(), varint_value()).prop_map(|(t, v)| Field::Varint(t, v)),
        (tag(), any::<u64>()).prop_map(|(t, v)| Field::Fixed64(t, v)),
        (tag(), any::<u32>()).prop_map(|(t, v)| Field::Fixed32(t, v)),
        (
            tag(),
            prop_oneof![
                vec(any::<u8>(), 0..5),
                Just(MSG_ID_HEADER.as_bytes().to_vec()),
                Just(vec![0xff, 0xfe]),
            ]
        )
            .prop_map(|(t, v)| Field::Bytes(t, v)),
        (tag(), tag()).prop_map(|(a, b)| Field::BadGroup(a, b)),
        vec(any::<u8>(), 1..4).prop_map(Field::Raw),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (tag(), vec(inner.clone(), 0..4)).prop_map(|(t, f)| Field::Nested(t, f)),
            (tag(), vec(inner, 0..3)).prop_map(|(t, f)| Field::Group(t, f)),
        ]
    })
}

fn put_varint(out: &mut Vec<u8>, value: u64) {
    prost::encoding::encode_varint(value, out);
}

fn put_key(out: &mut Vec<u8>, tag: u32, wire_type: u64) {
    put_varint(out, (u64::from(tag) << 3) | wire_type);
}

fn encode_fields(fields: &[Field], out: &mut Vec<u8>) {
    for field in fields {
        match field {
            Field::Varint(t, v) => {
                put_key(out, *t, 0);
                put_varint(out, *v);
            }
            Field::Fixed64(t, v) => {
                put_key(out, *t, 1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Fixed32(t, v) => {
                put_key(out, *t, 5);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Bytes(t, v) => {
                put_key(out, *t, 2);
                put_varint(out, v.len() as u64);
                out.extend_from_slice(v);
            }
            Field::Nested(t, inner) => {
                let mut body = Vec::new();
                encode_fields(inner, &mut body);
                put_key(out, *t, 2);
                put_varint(out, body.len() as u64);
                out.extend_from_slice(&body);
            }
            Field::Group(t, inner) => {
                put_key(out, *t, 3);
                encode_fields(inner, out);
                put_key(out, *t, 4);
            }
            Field::BadGroup(start, end) => {
                put_key(out, *start, 3);
                put_key(out, *end, 4);
            }
            Field::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

// ---- mutations of valid encodings ----

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
    Duplicate(usize, usize),
    Splice(usize, Vec<Field>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (at, 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, 1 << bit)),
        (at, any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        at.prop_map(Mutation::Remove),
        at.prop_map(Mutation::Truncate),
        (at, 1usize..8).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (at, vec(field(), 1..3)).prop_map(|(i, f)| Mutation::Splice(i, f)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    let pick = |i: usize| if len == 0 { 0 } else { i % len };
    match mutation {
        Mutation::Set(i, b) if len > 0 => bytes[pick(*i)] = *b,
        Mutation::Flip(i, mask) if len > 0 => bytes[pick(*i)] ^= mask,
        Mutation::Insert(i, b) => bytes.insert(i % (len + 1), *b),
        Mutation::Remove(i) if len > 0 => {
            bytes.remove(pick(*i));
        }
        Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
        Mutation::Duplicate(i, n) if len > 0 => {
            let from = pick(*i);
            let to = (from + n).min(len);
            let copy = bytes[from..to].to_vec();
            bytes.splice(to..to, copy);
        }
        Mutation::Splice(i, fields) => {
            let mut extra = Vec::new();
            encode_fields(fields, &mut extra);
            let at = i % (len + 1);
            bytes.splice(at..at, extra);
        }
        _ => {}
    }
}

/// A valid batch's encoding with one of its messages rewritten from wire soup, so fields
/// inside messages and headers get wrong wire types and unknown tags too.
fn soup_in_a_message() -> impl Strategy<Value = Vec<u8>> {
    (vec(field(), 0..5), vec(field(), 0..3)).prop_map(|(message, header)| {
        let mut header_body = Vec::new();
        encode_fields(&header, &mut header_body);
        let mut fields = message;
        fields.push(Field::Bytes(3, header_body));
        let mut out = Vec::new();
        encode_fields(&[Field::Nested(1, fields)], &mut out);
        out
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..48)) {
        agree(&bytes, &limits(u32::MAX))?;
    }

    #[test]
    fn wire_soup(fields in vec(field(), 0..6)) {
        let mut bytes = Vec::new();
        encode_fields(&fields, &mut bytes);
        agree(&bytes, &limits(u32::MAX))?;
    }

    #[test]
    fn wire_soup_inside_messages_and_headers(
        bytes in soup_in_a_message(),
        more in vec(field(), 0..2),
    ) {
        let mut bytes = bytes;
        encode_fields(&more, &mut bytes);
        agree(&bytes, &limits(u32::MAX))?;
    }

    #[test]
    fn mutated_valid_batches(batch in message_batch(), mutations in vec(mutation(), 1..4)) {
        let mut bytes = batch.encode_to_vec();
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        agree(&bytes, &limits(u32::MAX))?;
    }

    #[test]
    fn valid_batches_against_limits(batch in message_batch(), max_message_bytes in 0u32..64) {
        agree(&batch.encode_to_vec(), &limits(max_message_bytes))?;
    }
}

/// Nesting deeper than prost's recursion limit does not decode, and does not validate.
#[test]
fn groups_nested_past_prosts_limit_agree() {
    for depth in [1, 50, 98, 99, 100, 101, 150] {
        let mut field = Field::Varint(9, 1);
        for _ in 0..depth {
            field = Field::Group(9, vec![field]);
        }
        for bytes in [
            {
                let mut out = Vec::new();
                encode_fields(
                    &[
                        Field::Nested(1, vec![Field::Bytes(2, b"v".to_vec())]),
                        field.clone(),
                    ],
                    &mut out,
                );
                out
            },
            {
                let mut out = Vec::new();
                encode_fields(
                    &[Field::Nested(
                        1,
                        vec![Field::Nested(3, vec![field.clone()])],
                    )],
                    &mut out,
                );
                out
            },
        ] {
            agree(&bytes, &limits(u32::MAX)).unwrap_or_else(|err| panic!("depth {depth}: {err}"));
        }
    }
}
