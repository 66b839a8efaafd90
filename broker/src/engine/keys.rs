//! Key layouts. Integers are big-endian so that byte order is numeric order.
//!
//! | column family | key | value |
//! |---|---|---|
//! | log | `topic_id u32, partition u32, base_offset u64` | stored batch ([`super::batch`]) |
//! | index | same as log | [`super::batch::IndexEntry`] |
//! | producers | `topic_id, partition, producer_id u64` | [`super::producer::ProducerState`] |
//! | cursors | `topic_id, subscription name, 0x00, partition u32` | committed offset `u64` |
//! | acks | same as cursors | queue state ([`super::queue`]) |
//! | schedule | `due_ms u64, topic_id, partition, nonce u64` | a one-message `MessageBatch` |
//! | dedup | `topic_id, msg-id bytes` | expiry, ms since the epoch (`i64`) |
//! | meta | `topic/<tenant>/<name>`, `sub/<topic_id hex>/<name>`, `watermark/<topic_id hex>/<partition>`, `replicas/<topic_id hex>/<partition hex>` | JSON records / `u64` |
//! | meta | `next_topic_id` | the next topic id to hand out, `u32` (ids are never reused) |

/// Key of the batch at `offset` in a partition's log (and index).
pub fn log_key(topic_id: u32, partition: u32, offset: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(16);
    key.extend_from_slice(&topic_id.to_be_bytes());
    key.extend_from_slice(&partition.to_be_bytes());
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// The base offset stored in a log key.
pub fn offset_of_log_key(key: &[u8]) -> Option<u64> {
    key.get(8..16)?.try_into().ok().map(u64::from_be_bytes)
}

/// First key of every per-partition key space of a topic.
pub fn topic_start(topic_id: u32) -> Vec<u8> {
    topic_id.to_be_bytes().to_vec()
}

/// First key past every per-partition key space of a topic.
pub fn topic_end(topic_id: u32) -> Vec<u8> {
    (u64::from(topic_id) + 1).to_be_bytes()[4..].to_vec()
}

pub fn producer_key(topic_id: u32, partition: u32, producer_id: u64) -> Vec<u8> {
    log_key(topic_id, partition, producer_id)
}

pub fn cursor_prefix(topic_id: u32, subscription: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + subscription.len() + 1);
    key.extend_from_slice(&topic_id.to_be_bytes());
    key.extend_from_slice(subscription.as_bytes());
    key.push(0);
    key
}

pub fn cursor_key(topic_id: u32, subscription: &str, partition: u32) -> Vec<u8> {
    let mut key = cursor_prefix(topic_id, subscription);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The subscription name and partition of a [`cursor_key`].
pub fn parse_cursor_key(key: &[u8]) -> Option<(&str, u32)> {
    let (head, partition) = key.split_at_checked(key.len().checked_sub(4)?)?;
    let name = head.get(4..)?.strip_suffix(&[0])?;
    Some((
        std::str::from_utf8(name).ok()?,
        u32::from_be_bytes(partition.try_into().ok()?),
    ))
}

/// The key just past every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

pub fn schedule_key(due_ms: i64, topic_id: u32, partition: u32, nonce: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&(due_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(&topic_id.to_be_bytes());
    key.extend_from_slice(&partition.to_be_bytes());
    key.extend_from_slice(&nonce.to_be_bytes());
    key
}

/// `(due_ms, topic_id, partition)` of a schedule key.
pub fn parse_schedule_key(key: &[u8]) -> Option<(i64, u32, u32)> {
    if key.len() != 24 {
        return None;
    }
    let due = u64::from_be_bytes(key[0..8].try_into().ok()?) as i64;
    let topic_id = u32::from_be_bytes(key[8..12].try_into().ok()?);
    let partition = u32::from_be_bytes(key[12..16].try_into().ok()?);
    Some((due, topic_id, partition))
}

pub fn dedup_key(topic_id: u32, msg_id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + msg_id.len());
    key.extend_from_slice(&topic_id.to_be_bytes());
    key.extend_from_slice(msg_id);
    key
}

pub fn topic_meta_key(tenant: &str, name: &str) -> Vec<u8> {
    format!("topic/{tenant}/{name}").into_bytes()
}

pub const TOPIC_META_PREFIX: &[u8] = b"topic/";

/// The next topic id to hand out: above every id ever given, deleted topics' included.
pub const NEXT_TOPIC_ID_KEY: &[u8] = b"next_topic_id";

pub fn subscription_meta_prefix(topic_id: u32) -> Vec<u8> {
    format!("sub/{topic_id:08x}/").into_bytes()
}

pub fn subscription_meta_key(topic_id: u32, name: &str) -> Vec<u8> {
    format!("sub/{topic_id:08x}/{name}").into_bytes()
}

pub fn watermark_key(topic_id: u32, partition: u32) -> Vec<u8> {
    format!("watermark/{topic_id:08x}/{partition:08x}").into_bytes()
}

pub fn watermark_prefix(topic_id: u32) -> Vec<u8> {
    format!("watermark/{topic_id:08x}/").into_bytes()
}

/// Where a moved partition's replicas are kept (cluster mode; `replicated/moves.rs`).
pub const REPLICAS_PREFIX: &[u8] = b"replicas/";

pub fn replicas_key(topic_id: u32, partition: u32) -> Vec<u8> {
    format!("replicas/{topic_id:08x}/{partition:08x}").into_bytes()
}

pub fn replicas_prefix(topic_id: u32) -> Vec<u8> {
    format!("replicas/{topic_id:08x}/").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_topic_then_partition_then_offset() {
        let mut keys = vec![
            log_key(2, 0, 0),
            log_key(1, 1, 0),
            log_key(1, 0, 256),
            log_key(1, 0, 1),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                log_key(1, 0, 1),
                log_key(1, 0, 256),
                log_key(1, 1, 0),
                log_key(2, 0, 0)
            ]
        );
        assert_eq!(offset_of_log_key(&log_key(1, 0, 256)), Some(256));
    }

    #[test]
    fn topic_range_covers_exactly_one_topic() {
        assert!(log_key(7, u32::MAX, u64::MAX) < topic_end(7));
        assert!(topic_end(7) <= log_key(8, 0, 0));
        assert!(topic_start(7) <= log_key(7, 0, 0));
        assert_eq!(topic_end(u32::MAX), vec![0, 0, 0, 0]); // wraps; ids never reach u32::MAX
    }

    #[test]
    fn cursor_keys_of_one_subscription_share_a_prefix_no_other_has() {
        let a = cursor_key(1, "orders", 3);
        assert!(a.starts_with(&cursor_prefix(1, "orders")));
        assert!(!cursor_key(1, "orders2", 3).starts_with(&cursor_prefix(1, "orders")));
        assert!(a < prefix_end(&cursor_prefix(1, "orders")));
        assert_eq!(parse_cursor_key(&a), Some(("orders", 3)));
    }
}
