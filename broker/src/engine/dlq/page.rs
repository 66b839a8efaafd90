//! Reading pending dead letters a bounded page at a time.
//!
//! A page holds at most `max` letters (at most [`MAX_PAGE`]) and stops early once it holds
//! about [`PAGE_BYTES`], so neither the broker nor a client ever holds more than that of one
//! listing or replay. Partitions are read in order, each from where the listing reached in it:
//! the page token records that next offset for every partition, so the letters of a
//! multi-partition dead-letter topic are each listed once, in offset order per partition.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message as _;

use super::super::subscription::Subscription;
use super::super::topic::Topic;
use super::{DeadLetterInfo, REPLAY_CURSOR};
use crate::auth::{Action, Resource};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::principal::Principal;

/// Letters a listing returns when the request does not say.
pub const DEFAULT_PAGE: usize = 100;
/// Most letters one page holds; a larger `max` is refused rather than clamped, so a client
/// never mistakes a short page for the end.
pub const MAX_PAGE: usize = 1000;
/// A page stops growing once its messages take this many bytes (it always holds at least one
/// letter). Half of the 4 MiB a gRPC client decodes by default, so a page of ordinary letters
/// is one answer every client reads.
pub const PAGE_BYTES: usize = 2 << 20;
/// Stored batches one read of a partition returns at most; the read continues until the page
/// is full or the partition is at its end.
const READ_BATCHES: usize = 64;

/// One page of pending dead letters.
#[derive(Debug, Clone)]
pub struct DeadLetterPage {
    /// Oldest first within each partition, partitions in order.
    pub letters: Vec<DeadLetterInfo>,
    /// Where the next page starts; `None` when every partition was read to its end.
    pub next_page_token: Option<String>,
}

/// Letters read from the partitions and where each partition's reading stopped.
pub(super) struct Page {
    pub letters: Vec<DeadLetterInfo>,
    /// The next offset to read in each partition.
    pub next: Vec<u64>,
}

impl Page {
    /// Whether some partition has letters past where this page stopped.
    fn more(&self, topic: &Topic) -> bool {
        topic
            .partitions
            .iter()
            .zip(&self.next)
            .any(|(partition, &next)| next < partition.shared().high_watermark())
    }
}

/// Where a listing continues: the next offset of every partition of one dead-letter topic.
///
/// Encoded as URL-safe base64 (no padding) of a version byte, the topic's id, the partition
/// count and one offset per partition, all varints. It is opaque to clients; the topic id
/// makes the token of another topic (or of a deleted topic of the same name) an error instead
/// of a silent jump, since topic ids are never reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageToken {
    topic_id: u32,
    next: Vec<u64>,
}

const TOKEN_VERSION: u8 = 1;

impl PageToken {
    fn encode(&self) -> String {
        let mut buf = Vec::with_capacity(8 + 3 * self.next.len());
        buf.push(TOKEN_VERSION);
        prost::encoding::encode_varint(u64::from(self.topic_id), &mut buf);
        prost::encoding::encode_varint(self.next.len() as u64, &mut buf);
        for &offset in &self.next {
            prost::encoding::encode_varint(offset, &mut buf);
        }
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// The token `text` of `topic`, or `INVALID_ARGUMENT` when it is not one the broker issued
    /// for it.
    fn parse(text: &str, topic: &Topic) -> Result<PageToken> {
        PageToken::decode(text, topic.id(), topic.partitions.len()).ok_or_else(|| {
            Error::invalid(format!(
                "`page_token` is not a token this broker issued for topic `{}`: pass the \
                 `next_page_token` of the previous page unchanged, or no token for the first page",
                topic.name()
            ))
        })
    }

    /// The token `text` if it is well formed and belongs to topic `topic_id` of `partitions`.
    fn decode(text: &str, topic_id: u32, partitions: usize) -> Option<PageToken> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let (&version, mut buf) = bytes.split_first()?;
        if version != TOKEN_VERSION {
            return None;
        }
        let mut varint = || prost::encoding::decode_varint(&mut buf).ok();
        let id = u32::try_from(varint()?).ok()?;
        // Checked before reading the offsets, so a forged count allocates nothing.
        if id != topic_id || varint()? != partitions as u64 {
            return None;
        }
        let next = (0..partitions)
            .map(|_| varint())
            .collect::<Option<Vec<_>>>()?;
        buf.is_empty().then_some(PageToken { topic_id: id, next })
    }
}

/// `max` when it is a page size the broker serves.
fn check_page_size(max: usize) -> Result<usize> {
    if max == 0 || max > MAX_PAGE {
        return Err(Error::invalid(format!(
            "`max` is {max}; a page holds 1 to {MAX_PAGE} dead letters: list the rest with \
             `next_page_token`"
        )));
    }
    Ok(max)
}

impl Engine {
    /// One page of the dead letters not yet replayed, at most `max` (1 to [`MAX_PAGE`]), from
    /// the start or from where `page_token` (a previous page's `next_page_token`) left off.
    /// Only reads: before the first replay creates the replay cursor, every retained dead
    /// letter is pending.
    ///
    /// Each partition resumes at the furthest of the token's offset, the replay cursor and the
    /// log start, so letters replayed or dropped by retention since the previous page are not
    /// listed. Errors: `TOPIC_NOT_FOUND`, `INVALID_ARGUMENT` (a bad `max` or token).
    pub async fn list_dead_letters(
        &self,
        principal: &Principal,
        dlq_topic: &str,
        max: usize,
        page_token: Option<&str>,
    ) -> Result<DeadLetterPage> {
        self.authorize(principal, Action::Consume, Resource::Topic(dlq_topic))?;
        let max = check_page_size(max)?;
        let topic = self.topic(principal, dlq_topic)?;
        let token = page_token
            .filter(|t| !t.is_empty())
            .map(|t| PageToken::parse(t, &topic))
            .transpose()?;
        let cursor = topic.subscriptions.read().get(REPLAY_CURSOR).cloned();
        let start = pending_from(&topic, cursor.as_deref(), token.as_ref());
        let page = read_page(&topic, start, max).await?;
        let next_page_token = page.more(&topic).then(|| {
            PageToken {
                topic_id: topic.id(),
                next: page.next.clone(),
            }
            .encode()
        });
        Ok(DeadLetterPage {
            letters: page.letters,
            next_page_token,
        })
    }
}

/// Where pending letters start in each partition: past the replay cursor and the log start,
/// and past what `token` says was already listed.
pub(super) fn pending_from(
    topic: &Topic,
    cursor: Option<&Subscription>,
    token: Option<&PageToken>,
) -> Vec<u64> {
    topic
        .partitions
        .iter()
        .enumerate()
        .map(|(p, partition)| {
            let shared = partition.shared();
            let listed = token.map_or(0, |t| t.next[p]);
            let replayed = cursor.map_or(0, |c| c.committed(p as u32));
            // A token from before a restart of a memory topic can point past the end.
            listed
                .max(replayed)
                .max(shared.log_start())
                .min(shared.high_watermark())
        })
        .collect()
}

/// Reads up to `max` letters (and about [`PAGE_BYTES`]) from `start`, partition by partition.
pub(super) async fn read_page(topic: &Topic, start: Vec<u64>, max: usize) -> Result<Page> {
    let mut page = Page {
        letters: Vec::new(),
        next: start,
    };
    let mut bytes = 0;
    for (p, partition) in topic.partitions.iter().enumerate() {
        let shared = partition.shared();
        loop {
            if page.letters.len() >= max || bytes >= PAGE_BYTES {
                return Ok(page);
            }
            // Retention may drop the start while a page is read.
            let from = page.next[p].max(shared.log_start());
            page.next[p] = from;
            let batches = shared.read(from, READ_BATCHES, PAGE_BYTES).await?;
            if batches.is_empty() {
                break;
            }
            for batch in batches {
                let decoded =
                    rapidmq_proto::batch::decode(batch.payload.clone()).map_err(|err| {
                        Error::internal(format!("stored batch does not decode: {err}"))
                    })?;
                for (i, message) in decoded
                    .messages
                    .into_iter()
                    .take(batch.count as usize)
                    .enumerate()
                {
                    let offset = batch.base_offset + i as u64;
                    if offset < from {
                        continue;
                    }
                    if page.letters.len() >= max || bytes >= PAGE_BYTES {
                        return Ok(page);
                    }
                    bytes += message.encoded_len();
                    page.letters
                        .push(DeadLetterInfo::new(p as u32, offset, message));
                    page.next[p] = offset + 1;
                }
                // Past the whole batch, even one that decoded to fewer messages than its count.
                page.next[p] = page.next[p].max(batch.end_offset());
            }
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_only_for_its_own_topic() {
        let token = PageToken {
            topic_id: 7,
            next: vec![0, 1000, u64::MAX],
        };
        let text = token.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
        assert_eq!(PageToken::decode(&text, 7, 3), Some(token));
        assert_eq!(PageToken::decode(&text, 8, 3), None, "another topic");
        assert_eq!(
            PageToken::decode(&text, 7, 2),
            None,
            "another partition count"
        );
    }

    #[test]
    fn garbage_is_no_token() {
        let valid = PageToken {
            topic_id: 1,
            next: vec![5],
        }
        .encode();
        let truncated = &valid[..valid.len() - 1];
        let extended =
            URL_SAFE_NO_PAD.encode([URL_SAFE_NO_PAD.decode(&valid).unwrap(), vec![0]].concat());
        let other_version = URL_SAFE_NO_PAD.encode([2, 1, 1, 5]);
        let huge_count = URL_SAFE_NO_PAD.encode([1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        for bad in [
            "",
            "!!!",
            "AQ==",
            truncated,
            &extended,
            &other_version,
            &huge_count,
            "not a token",
        ] {
            assert_eq!(PageToken::decode(bad, 1, 1), None, "{bad:?}");
        }
    }

    #[test]
    fn page_sizes_outside_one_to_a_thousand_are_refused() {
        assert_eq!(check_page_size(1).unwrap(), 1);
        assert_eq!(check_page_size(MAX_PAGE).unwrap(), MAX_PAGE);
        for bad in [0, MAX_PAGE + 1, u32::MAX as usize] {
            let err = check_page_size(bad).unwrap_err();
            assert_eq!(err.code(), rapidmq_proto::ErrorCode::InvalidArgument);
            assert!(err.to_string().contains("next_page_token"), "{err}");
        }
    }
}
