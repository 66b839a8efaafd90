//! The metadata group's entries and replies (group [`METADATA`]), and its first content: the
//! node table, each node's client-facing addresses as it registered them through raft. The
//! state machine's application, node table plus engine, is [`super::metadata::Metadata`].

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::{GroupId, decode, encode};
use crate::engine;
use crate::error::Error;
use crate::storage::{Cf, StorageError, Store, WriteBatch};

/// The metadata group's id.
pub const METADATA: GroupId = 0;

/// A command of the metadata group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Node `id` serves clients at these addresses (replaces what it registered before).
    RegisterNode { id: u64, node: NodeInfo },
    /// A change to the engine's metadata (topics, subscriptions, users, roles, tenants), which
    /// every node's engine applies (`engine/replicated/`).
    Engine(engine::MetaCommand),
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
            MetaCommand::Engine(command) => write!(f, "engine: {}", command.kind()),
        }
    }
}

/// The reply to a metadata entry: the index it was applied at (a follower that forwarded it
/// waits until it applied that far itself) and, when the apply refused it, why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaReply {
    pub index: u64,
    /// The refusal's error code (its stable name) and message.
    pub refused: Option<(String, String)>,
}

impl MetaReply {
    /// The entry at `index` took effect.
    pub fn applied(index: u64) -> MetaReply {
        MetaReply {
            index,
            refused: None,
        }
    }

    /// The entry at `index` was refused with `err`.
    pub fn refused(index: u64, err: &Error) -> MetaReply {
        MetaReply {
            index,
            refused: Some((err.code().name().to_string(), err.message().to_string())),
        }
    }

    /// The refusal as the error the proposer returns.
    pub fn into_result(self) -> crate::error::Result<()> {
        match self.refused {
            None => Ok(()),
            Some((code, message)) => {
                let code = rapidmq_proto::ErrorCode::from_name(&code)
                    .unwrap_or(rapidmq_proto::ErrorCode::Internal);
                Err(Error::new(code, message))
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
        R = MetaReply,
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

impl NodeTable {
    /// Puts `RegisterNode`'s record in `batch`.
    pub fn write_register(
        &self,
        id: u64,
        node: &NodeInfo,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        batch.put(Cf::Meta, key(id), encode(node)?);
        Ok(())
    }

    /// `RegisterNode`'s in-memory effect, once written.
    pub fn apply_register(&self, id: u64, node: NodeInfo) {
        self.table.write().insert(id, node);
    }

    /// The table, encoded for a snapshot.
    pub fn snapshot(&self) -> Result<Vec<u8>, StorageError> {
        encode(&*self.table.read())
    }

    /// Puts in `batch` what replaces the table on disk with `snapshot`'s.
    pub fn write_restore(
        &self,
        snapshot: &[u8],
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let table: BTreeMap<u64, NodeInfo> = decode(snapshot)?;
        for id in self.table.read().keys() {
            batch.delete(Cf::Meta, key(*id));
        }
        for (id, node) in &table {
            batch.put(Cf::Meta, key(*id), encode(node)?);
        }
        Ok(())
    }

    /// Replaces the table in memory with `snapshot`'s, once written.
    pub fn restore(&self, snapshot: &[u8]) -> Result<(), StorageError> {
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
        let mut batch = WriteBatch::new();
        table.write_register(id, &info, &mut batch).unwrap();
        store.write(batch, true).unwrap();
        table.apply_register(id, info);
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
        stale.restore(&snapshot).unwrap();
        assert_eq!(*stale.table().read(), expected);
        assert_eq!(*NodeTable::open(&other).unwrap().table().read(), expected);
    }
}
