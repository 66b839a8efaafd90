//! The lenient walk of a stored (hence valid) batch: the value bytes a delivery counts.

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
