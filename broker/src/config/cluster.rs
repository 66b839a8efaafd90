//! `[cluster]`: which raft cluster this node belongs to (docs/adr/0005-clustering.md). No peers
//! means single-node mode: no raft, no cluster listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize};

use super::ConfigError;

/// The `[cluster]` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id, one of `peers`. Ids are at least 1.
    pub node_id: u64,
    /// Every node of the cluster, this one included, as `id=host:port` cluster addresses: a
    /// list, one comma-separated string, or a table `{ 1 = "host:port", ... }`.
    pub peers: PeerList,
    /// Where this node listens for other nodes; empty: its own address in `peers`.
    pub cluster_addr: String,
    /// How often a leader sends heartbeats.
    pub heartbeat_ms: u64,
    /// A follower that heard nothing for a random time in this range starts an election.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: 0,
            peers: PeerList::default(),
            cluster_addr: String::new(),
            heartbeat_ms: 300,
            election_timeout_min_ms: 1500,
            election_timeout_max_ms: 3000,
        }
    }
}

/// `cluster.peers`, kept as `id=host:port` strings; [`ClusterConfig::peer_map`] parses them.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct PeerList(pub Vec<String>);

impl<'de> Deserialize<'de> for PeerList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            List(Vec<String>),
            Table(BTreeMap<String, String>),
        }
        Ok(PeerList(match Form::deserialize(deserializer)? {
            Form::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
            Form::List(list) => list,
            Form::Table(table) => table
                .into_iter()
                .map(|(id, addr)| format!("{id}={addr}"))
                .collect(),
        }))
    }
}

impl ClusterConfig {
    /// Whether this node runs in cluster mode (`peers` set).
    pub fn enabled(&self) -> bool {
        !self.peers.0.is_empty()
    }

    /// The peers by id, checked: every entry `id=host:port`, ids unique and at least 1.
    pub fn peer_map(&self) -> Result<BTreeMap<u64, String>, ConfigError> {
        let invalid = |msg: String| ConfigError::Invalid(format!("cluster.peers: {msg}"));
        let mut peers = BTreeMap::new();
        for entry in &self.peers.0 {
            let (id, addr) = entry
                .split_once('=')
                .ok_or_else(|| invalid(format!("`{entry}` is not id=host:port")))?;
            let id: u64 = id
                .trim()
                .parse()
                .ok()
                .filter(|id| *id >= 1)
                .ok_or_else(|| {
                    invalid(format!("`{id}` in `{entry}` is not a node id (1 or more)"))
                })?;
            let addr = addr.trim();
            let valid_addr = addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid_addr {
                return Err(invalid(format!("`{addr}` in `{entry}` is not host:port")));
            }
            if peers.insert(id, addr.to_string()).is_some() {
                return Err(invalid(format!("node id {id} appears twice")));
            }
        }
        Ok(peers)
    }

    /// The address to listen on for other nodes.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        let peers = self.peer_map()?;
        let addr = if self.cluster_addr.is_empty() {
            peers.get(&self.node_id).cloned().unwrap_or_default()
        } else {
            self.cluster_addr.clone()
        };
        addr.parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "cluster.cluster_addr: `{addr}` is not an ip:port to listen on"
            ))
        })
    }

    /// Checks a cluster-mode section; single-node mode needs nothing.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        let peers = self.peer_map()?;
        if !peers.contains_key(&self.node_id) {
            return Err(ConfigError::Invalid(format!(
                "cluster.node_id {} is not one of cluster.peers ({})",
                self.node_id,
                peers
                    .keys()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.listen_addr()?;
        if self.heartbeat_ms == 0
            || self.election_timeout_min_ms <= self.heartbeat_ms
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
        {
            return Err(ConfigError::Invalid(
                "cluster: need 0 < heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(node_id: u64, peers: &str) -> ClusterConfig {
        ClusterConfig {
            node_id,
            peers: serde_json::from_value(serde_json::json!(peers)).unwrap(),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn peers_parse_from_a_string_a_list_or_a_table() {
        let text = cluster(2, "1=127.0.0.1:7001, 2=127.0.0.1:7002");
        text.validate().unwrap();
        assert_eq!(text.peer_map().unwrap()[&2], "127.0.0.1:7002");
        assert_eq!(text.listen_addr().unwrap().to_string(), "127.0.0.1:7002");
        let list: PeerList = serde_json::from_value(serde_json::json!(["1=a:1", "2=b:2"])).unwrap();
        let table: PeerList =
            serde_json::from_value(serde_json::json!({"1": "a:1", "2": "b:2"})).unwrap();
        assert_eq!(list, table);
        assert!(!ClusterConfig::default().enabled());
        ClusterConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_peers_are_refused_with_the_reason() {
        let message = |c: ClusterConfig| c.validate().unwrap_err().to_string();
        assert!(message(cluster(4, "1=127.0.0.1:7001")).contains("not one of cluster.peers"));
        assert!(message(cluster(1, "1=a:1,1=b:2")).contains("appears twice"));
        assert!(message(cluster(1, "1=nowhere")).contains("not host:port"));
        assert!(message(cluster(1, "x=a:1")).contains("not a node id"));
        assert!(message(cluster(1, "1=localhost:7001")).contains("cluster_addr"));
    }
}
