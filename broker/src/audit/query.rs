//! Reading the audit log: filtered pages in key (time) order, with an opaque page token, the
//! hex of the key to start from.

use rapidmq_proto::ErrorCode;

use super::record::{AuditRecord, KEY_LEN, Outcome, time_key};
use crate::error::{Error, Result};
use crate::storage::{Cf, Store};

/// Records per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// Records per page, at most.
pub const MAX_LIMIT: u32 = 1000;
/// Records a page reads from the store at most: a page of a rare filter ends early, with a
/// token to go on from, rather than scanning the whole log in one call.
const MAX_SCANNED: usize = 20_000;
/// Records read from the store at a time.
const CHUNK: usize = 512;

/// Which records a query wants; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Inclusive lower and exclusive upper bounds on `ts_ms`.
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    pub actor: Option<String>,
    pub action_prefix: Option<String>,
    pub outcome: Option<Outcome>,
    /// Only this tenant's records; `None` for a cluster admin (every tenant).
    pub tenant: Option<String>,
    /// 0 takes [`DEFAULT_LIMIT`]; capped at [`MAX_LIMIT`].
    pub limit: u32,
    /// From a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

impl AuditQuery {
    fn matches(&self, record: &AuditRecord) -> bool {
        self.tenant.as_ref().is_none_or(|t| *t == record.tenant)
            && self.actor.as_ref().is_none_or(|a| *a == record.actor)
            && self
                .action_prefix
                .as_ref()
                .is_none_or(|p| record.action.starts_with(p.as_str()))
            && self.outcome.is_none_or(|o| o == record.outcome)
    }

    pub fn limit(&self) -> usize {
        let limit = match self.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        limit as usize
    }
}

/// One page of records, each with its id (the hex of its key).
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub records: Vec<(String, AuditRecord)>,
    /// `None` when nothing more matches.
    pub next_page_token: Option<String>,
}

/// Parses an outcome filter (`ok`, `failed`, `denied`).
pub fn parse_outcome(outcome: &str) -> Result<Outcome> {
    outcome.parse().map_err(|()| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!("outcome is `ok`, `failed` or `denied`, not `{outcome}`"),
        )
    })
}

/// The page of `store`'s records that `query` asks for.
pub fn page(store: &dyn Store, query: &AuditQuery) -> Result<AuditPage> {
    let limit = query.limit();
    let mut from = time_key(query.since_ms.unwrap_or(0)).to_vec();
    if let Some(token) = query.page_token.as_deref().filter(|t| !t.is_empty()) {
        from = from.max(decode_token(token)?);
    }
    let to = match query.until_ms {
        Some(until) => time_key(until).to_vec(),
        None => vec![0xff; KEY_LEN + 1],
    };
    let mut page = AuditPage::default();
    let mut scanned = 0;
    while from < to {
        let chunk = store.scan(Cf::Audit, &from, &to, CHUNK)?;
        let Some((last, _)) = chunk.last() else {
            return Ok(page);
        };
        let after_chunk = successor(last);
        for (key, value) in chunk {
            if page.records.len() == limit || scanned == MAX_SCANNED {
                page.next_page_token = Some(encode_token(&key));
                return Ok(page);
            }
            scanned += 1;
            let record: AuditRecord = serde_json::from_slice(&value)
                .map_err(|err| Error::internal(format!("unreadable audit record: {err}")))?;
            if query.matches(&record) {
                page.records.push((encode_token(&key), record));
            }
        }
        from = after_chunk;
    }
    Ok(page)
}

/// The least key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

fn encode_token(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Result<Vec<u8>> {
    let bad = || Error::new(ErrorCode::InvalidArgument, "invalid page_token");
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return Err(bad());
    }
    (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16).map_err(|_| bad()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Audit, SINGLE_NODE, Stamp};
    use crate::principal::Principal;
    use crate::storage::{MemStore, WriteBatch};

    fn store_with(n: u64) -> MemStore {
        let store = MemStore::new();
        let stamp = Stamp::new(SINGLE_NODE, None);
        let mut batch = WriteBatch::new();
        for i in 0..n {
            let action = if i % 2 == 0 {
                "topic.create"
            } else {
                "user.create"
            };
            let mut audit = Audit::new(&Principal::anonymous(), action, format!("x:{i}"));
            audit.tenant = if i % 3 == 0 { "acme" } else { "default" }.to_string();
            stamp.entry(audit, 1000 + i, 1).write_to(&mut batch);
        }
        store.write(batch, true).unwrap();
        store
    }

    #[test]
    fn pages_follow_their_tokens_to_the_end_in_time_order() {
        let store = store_with(1200);
        let mut query = AuditQuery {
            action_prefix: Some("topic.".into()),
            limit: 250,
            ..AuditQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = page(&store, &query).unwrap();
            seen.extend(page.records.iter().map(|(_, r)| r.ts_ms));
            match page.next_page_token {
                Some(token) => query.page_token = Some(token),
                None => break,
            }
        }
        let expected: Vec<u64> = (0..1200).filter(|i| i % 2 == 0).map(|i| 1000 + i).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn filters_by_time_tenant_and_outcome() {
        let store = store_with(30);
        let query = AuditQuery {
            since_ms: Some(1003),
            until_ms: Some(1010),
            tenant: Some("acme".into()),
            ..AuditQuery::default()
        };
        let times: Vec<u64> = page(&store, &query)
            .unwrap()
            .records
            .iter()
            .map(|(_, r)| r.ts_ms)
            .collect();
        assert_eq!(times, vec![1003, 1006, 1009]);
        let denied = AuditQuery {
            outcome: Some(Outcome::Denied),
            ..AuditQuery::default()
        };
        assert!(page(&store, &denied).unwrap().records.is_empty());
        let bad = AuditQuery {
            page_token: Some("zz".into()),
            ..AuditQuery::default()
        };
        assert!(page(&store, &bad).is_err());
    }
}
