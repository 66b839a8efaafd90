//! Which cluster a node belongs to, checked on every node-to-node request (docs/clustering.md
//! "Cluster identity").
//!
//! Raft messages name groups and nodes by number, and every cluster numbers them alike: group 0
//! is the metadata, topic 1's partition 0 is group `1 << 32`, nodes are 1, 2, 3. So a node of
//! another cluster that answered at a peer's address (the address taken over while the peer was
//! down, a wrong `cluster.peers` entry) took this cluster's votes and appends as its own, and
//! both clusters' groups broke: its heartbeat answers named a log the leader had never sent,
//! which openraft reads as a replica losing entries it acknowledged.
//!
//! So every node has a cluster id, stamps it on each `Cluster` request it sends (the
//! [`HEADER`] metadata) and refuses, with `FAILED_PRECONDITION`, a request that carries another
//! one or none:
//! - A founding node (not `--join`) derives the id from `cluster.peers`. The founding nodes
//!   are started with the same list, so they agree without talking first, and a node started
//!   with a list of its own is refused by the others instead of joining a cluster by mistake.
//! - A node started with `--join` has no id until the first request from the cluster that adds
//!   it; it takes that request's id. Until then it sends none, and nobody needs to hear from it.
//!
//! The id is stored on first use (the metadata group's `StateKey::ClusterId` record) and wins
//! over the derivation at every later start, so adding or removing nodes (and editing `peers`
//! to match) never changes it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use super::keys::{self, StateKey};
use super::node_table::METADATA;
use super::{encode, read_state};
use crate::storage::{Cf, StorageError, Store, WriteBatch};

/// The request metadata that carries the sender's cluster id.
pub const HEADER: &str = "rapidmq-cluster-id";

/// How often a node warns about refused requests at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// This node's cluster id, once known; cloned into every peer channel and the listener.
#[derive(Clone, Default)]
pub struct ClusterIdentity {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    id: OnceLock<String>,
    /// Where a joining node stores the id it takes; `None` in tests of the transport alone.
    store: Option<Arc<dyn Store>>,
    last_warning: Mutex<Option<Instant>>,
}

impl ClusterIdentity {
    /// The identity of a node whose store is `store`: the id stored there, else (a founding
    /// node, not `join`) the one derived from `peers`, stored before it is used; a joining node
    /// without a stored id takes the first one a request brings.
    ///
    /// `configured` (`cluster.id`), when not empty, is the id instead of any derived or taken
    /// one; a node whose store holds another refuses to start.
    pub fn open(
        store: Arc<dyn Store>,
        configured: &str,
        peers: &BTreeMap<u64, String>,
        join: bool,
    ) -> Result<ClusterIdentity, String> {
        let text = |err: StorageError| err.to_string();
        if !configured.is_empty() && !valid(configured) {
            return Err(format!(
                "cluster.id {configured:?}: use 1 to 128 letters, digits, '.', '_' or '-'"
            ));
        }
        let stored: Option<String> =
            read_state(&*store, METADATA, StateKey::ClusterId).map_err(text)?;
        let id = match stored {
            Some(stored) if !configured.is_empty() && stored != configured => {
                return Err(format!(
                    "this node's data belongs to cluster {stored}, but cluster.id is \
                     {configured}: a data directory of another cluster"
                ));
            }
            Some(stored) => Some(stored),
            None if !configured.is_empty() => {
                save(&*store, configured).map_err(text)?;
                Some(configured.to_string())
            }
            None if join => None,
            None => {
                let id = founding_id(peers);
                save(&*store, &id).map_err(text)?;
                Some(id)
            }
        };
        let identity = ClusterIdentity {
            inner: Arc::new(Inner {
                id: OnceLock::new(),
                store: Some(store),
                last_warning: Mutex::new(None),
            }),
        };
        if let Some(id) = id {
            let _ = identity.inner.id.set(id);
        }
        Ok(identity)
    }

    /// An identity with the id `id` and nowhere to store one taken (tests of the transport).
    pub fn fixed(id: &str) -> ClusterIdentity {
        let identity = ClusterIdentity::default();
        let _ = identity.inner.id.set(id.to_string());
        identity
    }

    /// The cluster id, if this node knows it yet.
    pub fn id(&self) -> Option<&str> {
        self.inner.id.get().map(String::as_str)
    }

    /// The listener's check of each request ([`Interceptor`]).
    pub fn check(&self) -> Check {
        Check(self.clone())
    }

    /// Whether a request that carries `theirs` may go on; takes it as this node's id when it
    /// has none yet (a joining node).
    fn admit(&self, theirs: Option<&str>) -> Result<(), Status> {
        let refused = |why: String| {
            self.warn(&why);
            Err(Status::failed_precondition(why))
        };
        match (self.id(), theirs) {
            (Some(mine), Some(theirs)) if mine == theirs => Ok(()),
            (Some(mine), Some(theirs)) => refused(format!(
                "this node belongs to cluster {mine}, the request came from cluster {theirs}: a \
                 node of another cluster at a peer's address, or founding nodes started with \
                 different cluster.peers"
            )),
            (Some(mine), None) => refused(format!(
                "this node belongs to cluster {mine}, the request names no cluster: a node that \
                 has not joined one yet"
            )),
            (None, Some(theirs)) => {
                self.take(theirs);
                Ok(())
            }
            (None, None) => refused(
                "neither this node nor the request knows its cluster yet: this node waits to be \
                 added (--join)"
                    .to_string(),
            ),
        }
    }

    /// A joining node takes `id`, the first a request brought, and stores it.
    fn take(&self, id: &str) {
        if self.inner.id.set(id.to_string()).is_err() {
            return; // Another request set it first.
        }
        tracing::info!(
            cluster_id = id,
            "joined the cluster that sent the first request"
        );
        if let Some(store) = self.inner.store.clone() {
            let id = id.to_string();
            drop(tokio::task::spawn_blocking(move || {
                if let Err(err) = save(&*store, &id) {
                    tracing::error!(cause = %err, "storing the cluster id failed; taken again from the next request after a restart");
                }
            }));
        }
    }

    fn warn(&self, why: &str) {
        let mut last = self.inner.last_warning.lock();
        if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                event = "cluster_request_refused",
                "refused a cluster request (at most one warning a minute): {why}"
            );
        }
    }
}

/// Stamps this node's cluster id, once known, on every request to a peer.
impl Interceptor for ClusterIdentity {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(id) = self.id()
            && let Ok(value) = MetadataValue::try_from(id)
        {
            request.metadata_mut().insert(HEADER, value);
        }
        Ok(request)
    }
}

/// The cluster listener's check of each request: the sender's cluster must be this node's.
#[derive(Clone)]
pub struct Check(ClusterIdentity);

impl Interceptor for Check {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let theirs = request
            .metadata()
            .get(HEADER)
            .and_then(|value| value.to_str().ok());
        self.0.admit(theirs)?;
        Ok(request)
    }
}

/// Whether `id` may be a configured cluster id (it travels as request metadata).
fn valid(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The id founding nodes started with `peers` agree on: a digest of the list in id order.
pub fn founding_id(peers: &BTreeMap<u64, String>) -> String {
    let mut digest = Sha256::new();
    digest.update(b"rapidmq cluster v1\n");
    for (id, addr) in peers {
        digest.update(format!("{id}={addr}\n").as_bytes());
    }
    let hash = digest.finalize();
    data_encoding::HEXLOWER.encode(&hash[..16])
}

fn save(store: &dyn Store, id: &str) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    batch.put(
        Cf::RaftState,
        keys::state(METADATA, StateKey::ClusterId).to_vec(),
        encode(&id.to_string())?,
    );
    store.write(batch, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(list: &[(u64, &str)]) -> BTreeMap<u64, String> {
        list.iter().map(|(id, a)| (*id, a.to_string())).collect()
    }

    #[test]
    fn founding_nodes_with_the_same_peers_agree_and_other_peers_differ() {
        let one = peers(&[(1, "a:1"), (2, "b:1"), (3, "c:1")]);
        let same = peers(&[(3, "c:1"), (1, "a:1"), (2, "b:1")]);
        let other = peers(&[(1, "a:1"), (2, "b:2"), (3, "c:1")]);
        assert_eq!(founding_id(&one), founding_id(&same));
        assert_ne!(founding_id(&one), founding_id(&other));
        assert_eq!(founding_id(&one).len(), 32);
    }

    #[test]
    fn a_request_of_another_cluster_or_of_none_is_refused() {
        let node = ClusterIdentity::fixed("aaaa");
        assert!(node.admit(Some("aaaa")).is_ok());
        let other = node.admit(Some("bbbb")).unwrap_err();
        assert_eq!(other.code(), tonic::Code::FailedPrecondition);
        assert!(other.message().contains("cluster bbbb"), "{other:?}");
        let none = node.admit(None).unwrap_err();
        assert_eq!(none.code(), tonic::Code::FailedPrecondition);
    }

    #[tokio::test]
    async fn a_joining_node_takes_the_first_id_it_hears_and_then_refuses_others() {
        let joining = ClusterIdentity::default();
        assert!(joining.admit(None).is_err(), "nobody knows the cluster yet");
        assert!(joining.admit(Some("aaaa")).is_ok());
        assert_eq!(joining.id(), Some("aaaa"));
        assert!(joining.admit(Some("bbbb")).is_err());
    }

    #[tokio::test]
    async fn the_stored_id_wins_over_the_peers_at_every_later_start() {
        use crate::storage::{RocksStore, RocksTuning};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(RocksStore::open(dir.path(), &RocksTuning::default()).unwrap());
        let founded = peers(&[(1, "a:1"), (2, "b:1")]);
        let first = ClusterIdentity::open(Arc::clone(&store), "", &founded, false).unwrap();
        let grown = peers(&[(1, "a:1"), (2, "b:1"), (3, "c:1")]);
        let again = ClusterIdentity::open(Arc::clone(&store), "", &grown, false).unwrap();
        assert_eq!(again.id(), first.id());
        assert_eq!(first.id(), Some(founding_id(&founded).as_str()));

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(RocksStore::open(dir.path(), &RocksTuning::default()).unwrap());
        let joining = ClusterIdentity::open(Arc::clone(&store), "", &grown, true).unwrap();
        assert_eq!(joining.id(), None, "a joining node derives nothing");
        joining.admit(Some("aaaa")).unwrap();
        // Stored in the background; read back once it is there.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stored: Option<String> =
                read_state(&*store, METADATA, StateKey::ClusterId).unwrap();
            if stored.is_some() {
                assert_eq!(stored.as_deref(), Some("aaaa"));
                break;
            }
            assert!(Instant::now() < deadline, "the taken id was not stored");
            tokio::task::yield_now().await;
        }
        let restarted = ClusterIdentity::open(Arc::clone(&store), "", &grown, true).unwrap();
        assert_eq!(restarted.id(), Some("aaaa"));
        let named = ClusterIdentity::open(Arc::clone(&store), "aaaa", &grown, false).unwrap();
        assert_eq!(named.id(), Some("aaaa"));
        let err = ClusterIdentity::open(Arc::clone(&store), "bbbb", &grown, false)
            .err()
            .expect("another cluster's data");
        assert!(err.contains("belongs to cluster aaaa"), "{err}");
    }

    #[test]
    fn a_configured_id_is_used_as_given_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::storage::RocksStore::open(dir.path(), &Default::default()).unwrap());
        let any = peers(&[(1, "a:1")]);
        let named = ClusterIdentity::open(Arc::clone(&store), "orders-eu", &any, true).unwrap();
        assert_eq!(named.id(), Some("orders-eu"));
        // A joining node told its cluster's id takes no other from a first request.
        let stranger = named.admit(Some("orders-us")).unwrap_err();
        assert_eq!(stranger.code(), tonic::Code::FailedPrecondition);
        named.admit(Some("orders-eu")).unwrap();
        let err = ClusterIdentity::open(store, "no spaces", &any, false)
            .err()
            .expect("refused");
        assert!(err.contains("cluster.id"), "{err}");
    }

    #[test]
    fn the_stamp_carries_the_id_once_known() {
        let mut unknown = ClusterIdentity::default();
        let request = unknown.call(Request::new(())).unwrap();
        assert!(request.metadata().get(HEADER).is_none());
        let mut known = ClusterIdentity::fixed("aaaa");
        let request = known.call(Request::new(())).unwrap();
        assert_eq!(request.metadata().get(HEADER).unwrap(), "aaaa");
    }
}
