//! Batch compression: how a [`MessageBatch`]'s messages are packed into `compressed` and read
//! back (docs/adr/0006-batch-compression.md).
//!
//! A compressed batch carries its messages as an encoded `MessageBatch` holding only field 1
//! (`messages`), compressed as one LZ4 or Zstandard frame, in `compressed`; `messages` is then
//! empty. Everything that reads a stored batch decodes it with [`decode`], which hands back the
//! messages whatever the compression, so a reader never looks at `compression` itself.

use std::fmt;
use std::io::Read;

use bytes::Bytes;
use prost::Message as _;

use crate::v1::{Compression, Message, MessageBatch};

/// Zstandard's own default level: most of the ratio of the higher levels at a fraction of their
/// cost (see docs/benchmarks.md "Batch compression").
const ZSTD_LEVEL: i32 = 3;

/// Why a batch could not be read.
#[derive(Debug)]
pub enum BatchError {
    /// The bytes are not an encoded `MessageBatch`, or the decompressed messages are not.
    Decode(prost::DecodeError),
    /// `compression` is a value this build does not know.
    UnknownCompression(i32),
    /// A compressed batch also carries uncompressed messages.
    Mixed,
    /// The compressed frame is corrupt or truncated.
    Corrupt(String),
    /// The messages would decompress to more than the limit allows.
    TooLarge { limit: usize },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Decode(err) => write!(f, "{err}"),
            BatchError::UnknownCompression(value) => write!(
                f,
                "unknown compression {value}; known are 0 (none), 1 (lz4) and 2 (zstd)"
            ),
            BatchError::Mixed => {
                write!(
                    f,
                    "a compressed batch must carry its messages only compressed"
                )
            }
            BatchError::Corrupt(reason) => {
                write!(f, "the compressed messages are corrupt: {reason}")
            }
            BatchError::TooLarge { limit } => write!(
                f,
                "the compressed messages expand to more than {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for BatchError {}

impl From<prost::DecodeError> for BatchError {
    fn from(err: prost::DecodeError) -> Self {
        BatchError::Decode(err)
    }
}

/// A known compression value.
pub fn compression(value: i32) -> Result<Compression, BatchError> {
    Compression::try_from(value).map_err(|_| BatchError::UnknownCompression(value))
}

/// Decodes a batch with its messages in `messages`, decompressing them if they were sent
/// compressed (the result then says `COMPRESSION_NONE` and has no `compressed` bytes). Expands
/// to at most `max_bytes`, so a small frame cannot make the reader allocate without bound.
pub fn decode_with_limit(bytes: Bytes, max_bytes: usize) -> Result<MessageBatch, BatchError> {
    let mut batch = MessageBatch::decode(bytes)?;
    let codec = compression(batch.compression)?;
    if codec == Compression::None {
        return Ok(batch);
    }
    if !batch.messages.is_empty() {
        return Err(BatchError::Mixed);
    }
    let inner = decompress(codec, &batch.compressed, max_bytes)?;
    batch.messages = MessageBatch::decode(Bytes::from(inner))?.messages;
    batch.compression = Compression::None as i32;
    batch.compressed = Bytes::new();
    Ok(batch)
}

/// [`decode_with_limit`] with the limit every reader of stored batches uses: what the broker
/// accepted was checked against its own (smaller) limit before it was stored.
pub fn decode(bytes: Bytes) -> Result<MessageBatch, BatchError> {
    decode_with_limit(bytes, MAX_DECOMPRESSED_BYTES)
}

/// The most a stored batch's messages may expand to for a reader: above any broker's
/// `limits.max_request_bytes`, which bounds them at publish.
pub const MAX_DECOMPRESSED_BYTES: usize = 1 << 30;

/// Encodes `messages` as one batch, compressed with `codec`. A compressed batch that would not
/// be smaller than the plain one is sent plain: compression is chosen per batch.
pub fn encode(messages: Vec<Message>, base_timestamp_ms: i64, codec: Compression) -> Vec<u8> {
    let plain = MessageBatch {
        messages,
        base_timestamp_ms: 0,
        compression: Compression::None as i32,
        compressed: Bytes::new(),
    };
    if codec != Compression::None {
        let inner = plain.encode_to_vec();
        let compressed = compress(codec, &inner);
        if compressed.len() < inner.len() {
            return MessageBatch {
                messages: Vec::new(),
                base_timestamp_ms,
                compression: codec as i32,
                compressed: Bytes::from(compressed),
            }
            .encode_to_vec();
        }
    }
    MessageBatch {
        base_timestamp_ms,
        ..plain
    }
    .encode_to_vec()
}

/// `data` compressed as one frame of `codec`; `data` itself for `COMPRESSION_NONE`.
pub fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => data.to_vec(),
        Compression::Lz4 => {
            let mut encoder =
                lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(data.len() / 2));
            // Writing into a Vec cannot fail.
            std::io::Write::write_all(&mut encoder, data).expect("lz4 into memory");
            encoder.finish().expect("lz4 into memory")
        }
        Compression::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL).expect("zstd into memory"),
    }
}

/// The frame `data` of `codec` decompressed, refusing to expand past `max_bytes`.
pub fn decompress(
    codec: Compression,
    data: &[u8],
    max_bytes: usize,
) -> Result<Vec<u8>, BatchError> {
    let reader: Box<dyn Read + '_> = match codec {
        Compression::None => return Ok(data.to_vec()),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|err| BatchError::Corrupt(err.to_string()))?
                .single_frame(),
        ),
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(max_bytes));
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|err| BatchError::Corrupt(err.to_string()))?;
    if out.len() > max_bytes {
        return Err(BatchError::TooLarge { limit: max_bytes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| Message {
                key: (i % 2 == 0).then(|| Bytes::from(format!("key-{i}"))),
                value: Bytes::from(format!(
                    r#"{{"order":{i},"status":"shipped","total":12.5}}"#
                )),
                timestamp_delta_ms: i as i64,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn every_codec_round_trips_the_messages_and_the_base_timestamp() {
        for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let encoded = encode(messages(100), 1_700_000_000_000, codec);
            let raw = MessageBatch::decode(&encoded[..]).unwrap();
            assert_eq!(
                raw.compression, codec as i32,
                "{codec:?} is used when it pays"
            );
            assert_eq!(raw.messages.is_empty(), codec != Compression::None);
            let batch = decode(Bytes::from(encoded)).unwrap();
            assert_eq!(batch.messages, messages(100), "{codec:?}");
            assert_eq!(batch.base_timestamp_ms, 1_700_000_000_000);
            assert_eq!(batch.compression, Compression::None as i32);
        }
    }

    #[test]
    fn a_batch_that_does_not_shrink_goes_plain() {
        let random = vec![Message {
            value: Bytes::from(
                (0..64u8)
                    .map(|i| i.wrapping_mul(151) ^ 0x5a)
                    .collect::<Vec<_>>(),
            ),
            ..Default::default()
        }];
        let encoded = encode(random.clone(), 0, Compression::Zstd);
        let raw = MessageBatch::decode(&encoded[..]).unwrap();
        assert_eq!(raw.compression, Compression::None as i32);
        assert_eq!(raw.messages, random);
    }

    #[test]
    fn expansion_past_the_limit_is_refused() {
        let big = vec![Message {
            value: Bytes::from(vec![b'a'; 100_000]),
            ..Default::default()
        }];
        for codec in [Compression::Lz4, Compression::Zstd] {
            let encoded = Bytes::from(encode(big.clone(), 0, codec));
            assert!(encoded.len() < 1000, "{codec:?} shrinks a run of one byte");
            assert!(matches!(
                decode_with_limit(encoded.clone(), 50_000),
                Err(BatchError::TooLarge { limit: 50_000 })
            ));
            assert!(decode_with_limit(encoded, 200_000).is_ok());
        }
    }

    #[test]
    fn corrupt_unknown_and_mixed_batches_are_errors() {
        let mut corrupt = MessageBatch {
            compression: Compression::Lz4 as i32,
            compressed: Bytes::from_static(b"not an lz4 frame"),
            ..Default::default()
        };
        assert!(matches!(
            decode(Bytes::from(corrupt.encode_to_vec())),
            Err(BatchError::Corrupt(_))
        ));
        corrupt.compression = Compression::Zstd as i32;
        assert!(matches!(
            decode(Bytes::from(corrupt.encode_to_vec())),
            Err(BatchError::Corrupt(_))
        ));
        corrupt.compression = 7;
        assert!(matches!(
            decode(Bytes::from(corrupt.encode_to_vec())),
            Err(BatchError::UnknownCompression(7))
        ));
        let mut mixed =
            MessageBatch::decode(&encode(messages(10), 0, Compression::Lz4)[..]).unwrap();
        mixed.messages = messages(1);
        assert!(matches!(
            decode(Bytes::from(mixed.encode_to_vec())),
            Err(BatchError::Mixed)
        ));
    }
}
