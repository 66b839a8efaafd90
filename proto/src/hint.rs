//! [`LeaderHint`](crate::v1::LeaderHint)s in gRPC status details: an `UNAVAILABLE` answer's
//! `grpc-status-details-bin` holds a `google.rpc.Status` whose `details` hold the hint as a
//! `google.protobuf.Any` (docs/errors.md "LeaderHint").
//!
//! The two well-known messages are declared here with their published field numbers, as they
//! are all that is needed of them.

use prost::Message;

use crate::v1::LeaderHint;

/// The `Any.type_url` of a [`LeaderHint`].
pub const LEADER_HINT_TYPE_URL: &str = "type.googleapis.com/rapidmq.v1.LeaderHint";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// The status details carrying `hint`, for a status of `code` and `message`.
pub fn encode_hint(code: i32, message: &str, hint: &LeaderHint) -> Vec<u8> {
    RpcStatus {
        code,
        message: message.to_string(),
        details: vec![Any {
            type_url: LEADER_HINT_TYPE_URL.to_string(),
            value: hint.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

/// The [`LeaderHint`] in status `details`, if any.
pub fn decode_hint(details: &[u8]) -> Option<LeaderHint> {
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .find(|any| any.type_url == LEADER_HINT_TYPE_URL)
        .and_then(|any| LeaderHint::decode(any.value.as_slice()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_survives_the_round_trip_and_other_details_are_not_one() {
        let hint = LeaderHint {
            topic: "orders".into(),
            partition: 2,
            term: 7,
            leader: 3,
            grpc_addr: "127.0.0.1:9000".into(),
        };
        assert_eq!(decode_hint(&encode_hint(14, "moved", &hint)), Some(hint));
        let other = RpcStatus {
            code: 14,
            message: String::new(),
            details: vec![Any {
                type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                value: vec![],
            }],
        };
        assert_eq!(decode_hint(&other.encode_to_vec()), None);
        assert_eq!(decode_hint(b"\xff"), None);
    }
}
