//! The metadata group's state machine (group [`METADATA`]), whose first content is the node
//! table: each node's client-facing addresses, as it registered them through raft.
//!
//! Engine metadata (topics, subscriptions, ...) does not go through raft yet (next slice of
//! ADR 5); it stays in each node's own engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::type_config::alias::LogIdOf;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::{Apply, GroupId, decode, encode};
use crate::storage::{Cf, StorageError, Store, WriteBatch};

/// The metadata group's id.
pub const METADATA: GroupId = 0;

/// A command of the metadata group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Node `id` serves clients at these addresses (replaces what it registered before).
    RegisterNode { id: u64, node: NodeInfo },
}

impl std::fmt::Display for MetaCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaCommand::RegisterNode { id, node } => {
                write!(
                    f,
                    "register node {id} ({}, {})",
                    node.grpc_addr, node.http_addr
                )
            }
        }
    }
}

/// A node's client-facing addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub grpc_addr: String,
    pub http_addr: String,
}

openraft::declare_raft_types!(
    /// The metadata group's openraft types.
    pub MetaConfig:
        D = MetaCommand,
        R = (),
);

/// The node table, shared between the state machine and whoever reads it.
pub type Table = Arc<RwLock<BTreeMap<u64, NodeInfo>>>;

/// `Cf::Meta` keys of the node table: this prefix, then the node id (u64 BE).
const PREFIX: &[u8] = b"cluster/node/";

fn key(id: u64) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend(id.to_be_bytes());
    key
}

/// The metadata state machine's application: the node table.
pub struct NodeTable {
    table: Table,
}

impl NodeTable {
    /// The table as the store holds it.
    pub fn open(store: &dyn Store) -> Result<NodeTable, StorageError> {
        let mut upper = PREFIX.to_vec();
        *upper.last_mut().expect("a non-empty prefix") += 1;
        let mut table = BTreeMap::new();
        for (key, value) in store.scan(Cf::Meta, PREFIX, &upper, usize::MAX)? {
            let id: [u8; 8] = key[PREFIX.len()..]
                .try_into()
                .map_err(|_| StorageError("a node table key of the wrong length".to_string()))?;
            table.insert(u64::from_be_bytes(id), decode(&value)?);
        }
        Ok(NodeTable {
            table: Arc::new(RwLock::new(table)),
        })
    }

    /// The table, as applied so far.
    pub fn table(&self) -> Table {
        Arc::clone(&self.table)
    }
}

impl Apply<MetaConfig> for NodeTable {
    type Staged = ();

    fn stage(&self) {}

    async fn write(
        &self,
        _staged: &mut (),
        _log_id: &LogIdOf<MetaConfig>,
        data: &MetaCommand,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        match data {
            MetaCommand::RegisterNode { id, node } => batch.put(Cf::Meta, key(*id), encode(node)?),
        }
        Ok(())
    }

    async fn apply(&mut self, _staged: &mut (), _log_id: &LogIdOf<MetaConfig>, data: MetaCommand) {
        match data {
            MetaCommand::RegisterNode { id, node } => {
                self.table.write().insert(id, node);
            }
        }
    }

    fn no_payload(&mut self, _log_id: &LogIdOf<MetaConfig>) {}

    fn snapshot(&self) -> Result<Vec<u8>, StorageError> {
        encode(&*self.table.read())
    }

    fn write_restore(&self, snapshot: &[u8], batch: &mut WriteBatch) -> Result<(), StorageError> {
        let table: BTreeMap<u64, NodeInfo> = decode(snapshot)?;
        for id in self.table.read().keys() {
            batch.delete(Cf::Meta, key(*id));
        }
        for (id, node) in &table {
            batch.put(Cf::Meta, key(*id), encode(node)?);
        }
        Ok(())
    }

    async fn restore(&mut self, snapshot: &[u8]) -> Result<(), StorageError> {
        *self.table.write() = decode(snapshot)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStore;

    fn node(port: u16) -> NodeInfo {
        NodeInfo {
            grpc_addr: format!("127.0.0.1:{port}"),
            http_addr: format!("127.0.0.1:{}", port + 1),
        }
    }

    fn register(table: &mut NodeTable, store: &dyn Store, id: u64, info: NodeInfo) {
        let log_id = openraft::testing::log_id::<MetaConfig>(1, 0, id);
        let command = MetaCommand::RegisterNode { id, node: info };
        let mut batch = WriteBatch::new();
        futures::executor::block_on(table.write(&mut (), &log_id, &command, &mut batch)).unwrap();
        store.write(batch, true).unwrap();
        futures::executor::block_on(table.apply(&mut (), &log_id, command));
    }

    #[test]
    fn the_node_table_is_restored_from_the_store_and_from_a_snapshot() {
        let store = MemStore::new();
        let mut table = NodeTable::open(&store).unwrap();
        register(&mut table, &store, 1, node(7000));
        register(&mut table, &store, 2, node(7100));
        register(&mut table, &store, 1, node(7200));
        let expected: BTreeMap<u64, NodeInfo> = [(1, node(7200)), (2, node(7100))].into();
        assert_eq!(*table.table().read(), expected);
        assert_eq!(*NodeTable::open(&store).unwrap().table().read(), expected);

        // A snapshot replaces another node's table whole, on disk and in memory.
        let snapshot = table.snapshot().unwrap();
        let other = MemStore::new();
        let mut stale = NodeTable::open(&other).unwrap();
        register(&mut stale, &other, 3, node(7300));
        let mut batch = WriteBatch::new();
        stale.write_restore(&snapshot, &mut batch).unwrap();
        other.write(batch, true).unwrap();
        futures::executor::block_on(stale.restore(&snapshot)).unwrap();
        assert_eq!(*stale.table().read(), expected);
        assert_eq!(*NodeTable::open(&other).unwrap().table().read(), expected);
    }
}
