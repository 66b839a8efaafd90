use super::*;
use prost::Message as _;
use rapidmq_proto::ErrorCode;
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

    let mut mixed = MessageBatch::decode(&compressed(json_like(10), Compression::Lz4)[..]).unwrap();
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
