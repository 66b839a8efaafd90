//! Where a partition's group and its writer live: this node, the replicas and how to reach
//! them.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::NodeTls;
use crate::cluster::keys::GroupId;
use crate::cluster::partitions::Addresses;
use crate::cluster::rpc::{self, Rpc};
use crate::cluster::service::Publisher;

/// Where a group and its writer live: this node's id, the replicas and how to reach them.
#[derive(Clone)]
pub struct Route {
    pub me: u64,
    pub group: GroupId,
    pub topic_id: u32,
    pub partition: u32,
    /// The group's replicas, preferred leader first (they change with a replica move).
    pub replicas: Replicas,
    /// Where each node's cluster listener is.
    pub addresses: Arc<Addresses>,
    pub tls: NodeTls,
    /// The engine, for the publishes this node forwards and then leads itself ([`Forwarder`]).
    pub publisher: Publisher,
}

/// A partition's replicas, preferred leader first, shared by what routes to them.
#[derive(Clone, Default)]
pub struct Replicas(Arc<parking_lot::RwLock<Vec<u64>>>);

impl Replicas {
    pub fn new(replicas: Vec<u64>) -> Replicas {
        Replicas(Arc::new(parking_lot::RwLock::new(replicas)))
    }

    pub fn get(&self) -> Vec<u64> {
        self.0.read().clone()
    }

    pub fn set(&self, replicas: &[u64]) {
        *self.0.write() = replicas.to_vec();
    }

    /// The preferred leader.
    pub fn first(&self) -> Option<u64> {
        self.0.read().first().copied()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.0.read().contains(&id)
    }
}

impl Route {
    pub(in crate::cluster) fn name(&self) -> String {
        format!(
            "partition group {} (topic id {} partition {})",
            self.group, self.topic_id, self.partition
        )
    }

    /// Calls `rpc` on `node` within `timeout` with `request`: the node's answer, itself a
    /// `Result`. Either error names what was asked of which node (`"read from"`: "read from
    /// node 2: ...").
    pub(in crate::cluster) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        node: u64,
        what: &str,
        timeout: Duration,
        rpc: Rpc,
        request: &impl serde::Serialize,
    ) -> std::result::Result<T, String> {
        let text = |err: &dyn std::fmt::Display| format!("{what} node {node}: {err}");
        let addr = self
            .addresses
            .get(node)
            .ok_or_else(|| format!("node {node} has no known cluster address"))?;
        let answer: std::result::Result<T, String> =
            rpc::call(&self.tls, &addr, timeout, rpc, request)
                .await
                .map_err(|err| text(&err))?;
        answer.map_err(|err| text(&err))
    }
}
