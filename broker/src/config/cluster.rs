//! `[cluster]`: which raft cluster this node belongs to (docs/adr/0005-clustering.md). No peers
//! means single-node mode: no raft, no cluster listener.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
    /// PEM CA certificates that every node's certificate (`tls.cert_file`) chains to. Needed in
    /// cluster mode when TLS is on: the cluster listener then requires a client certificate
    /// signed by it, and this node verifies its peers' certificates against it.
    pub ca_file: PathBuf,
    /// With TLS off, allow cluster addresses other than loopback: node-to-node traffic is then
    /// plaintext and unauthenticated. Off by default.
    pub insecure: bool,
    /// This node joins a running cluster: it never initializes the metadata group (even with
    /// the lowest id of `peers`) and waits until `rapidmq cluster add-node` adds it.
    pub join: bool,
    /// The cluster's id, the same on every node; empty: the founding nodes derive it from
    /// `peers` (which then must be the same list on each), a joining node takes the cluster's
    /// (docs/clustering.md "Cluster identity").
    pub id: String,
    /// Entries a group applies between two snapshots; each snapshot lets the group forget that
    /// many older entries (a follower further behind catches up by snapshot).
    pub snapshot_every_entries: u64,
    /// How often this node hands the partition groups it leads back to their preferred
    /// replicas, once those are caught up (after a failover); 0 turns it off.
    pub leader_rebalance_interval_ms: u64,
    /// Whether adding a node (`cluster add-node`) moves partition replicas to it at once, as
    /// `cluster rebalance` does.
    pub rebalance_on_join: bool,
    /// Replica moves this node takes steps of at once, among the partitions it leads (the
    /// leader sends the new replicas their copy); the others wait their turn. 0: no limit.
    pub max_concurrent_moves: u32,
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
            ca_file: PathBuf::new(),
            insecure: false,
            join: false,
            id: String::new(),
            snapshot_every_entries: 5000,
            leader_rebalance_interval_ms: 10_000,
            rebalance_on_join: true,
            max_concurrent_moves: 4,
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

    /// Checks a cluster-mode section; single-node mode needs nothing. `tls` is whether the
    /// broker's TLS is on (`tls.cert_file`), which decides how the cluster listener is secured.
    pub fn validate(&self, tls: bool) -> Result<(), ConfigError> {
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
        if self.snapshot_every_entries == 0 {
            return Err(ConfigError::Invalid(
                "cluster: snapshot_every_entries must be at least 1".into(),
            ));
        }
        if self.heartbeat_ms == 0
            || self.election_timeout_min_ms <= self.heartbeat_ms
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
        {
            return Err(ConfigError::Invalid(
                "cluster: need 0 < heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms"
                    .to_string(),
            ));
        }
        self.validate_security(tls)
    }

    /// TLS on: a cluster CA is needed. TLS off: every cluster address is loopback, unless
    /// `insecure` says that plaintext between hosts is meant.
    fn validate_security(&self, tls: bool) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let has_ca = !self.ca_file.as_os_str().is_empty();
        if tls {
            if !has_ca {
                return invalid(
                    "cluster mode with TLS on needs cluster.ca_file (--cluster-ca-file): the CA \
                     that signs every node's certificate; the cluster listener requires it"
                        .to_string(),
                );
            }
            if self.insecure {
                return invalid(
                    "cluster.insecure applies only with TLS off; remove it, the cluster listener \
                     uses TLS"
                        .to_string(),
                );
            }
            return Ok(());
        }
        if has_ca {
            return invalid("cluster.ca_file needs tls.cert_file and tls.key_file".to_string());
        }
        if self.insecure {
            return Ok(());
        }
        let listen = self.listen_addr()?.to_string();
        let peers = self.peer_map()?;
        let addrs = std::iter::once(listen.as_str()).chain(peers.values().map(String::as_str));
        if let Some(addr) = addrs.into_iter().find(|addr| !is_loopback(addr)) {
            return invalid(format!(
                "cluster address `{addr}` is not loopback and TLS is off: node-to-node traffic \
                 would be plaintext and unauthenticated; set tls.cert_file, tls.key_file and \
                 cluster.ca_file, or cluster.insecure = true (--cluster-insecure) to allow it"
            ));
        }
        Ok(())
    }
}

/// Whether the host of `host:port` is this machine: `localhost` or a loopback IP.
fn is_loopback(addr: &str) -> bool {
    let host = peer_host(addr);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The host of a `host:port` cluster address, without the brackets of an IPv6 literal.
pub fn peer_host(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
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
        text.validate(false).unwrap();
        assert_eq!(text.peer_map().unwrap()[&2], "127.0.0.1:7002");
        assert_eq!(text.listen_addr().unwrap().to_string(), "127.0.0.1:7002");
        let list: PeerList = serde_json::from_value(serde_json::json!(["1=a:1", "2=b:2"])).unwrap();
        let table: PeerList =
            serde_json::from_value(serde_json::json!({"1": "a:1", "2": "b:2"})).unwrap();
        assert_eq!(list, table);
        assert!(!ClusterConfig::default().enabled());
        ClusterConfig::default().validate(false).unwrap();
    }

    #[test]
    fn bad_peers_are_refused_with_the_reason() {
        let message = |c: ClusterConfig| c.validate(false).unwrap_err().to_string();
        assert!(message(cluster(4, "1=127.0.0.1:7001")).contains("not one of cluster.peers"));
        assert!(message(cluster(1, "1=a:1,1=b:2")).contains("appears twice"));
        assert!(message(cluster(1, "1=nowhere")).contains("not host:port"));
        assert!(message(cluster(1, "x=a:1")).contains("not a node id"));
        assert!(message(cluster(1, "1=localhost:7001")).contains("cluster_addr"));
    }

    #[test]
    fn tls_on_needs_a_cluster_ca_and_no_insecure() {
        let mut c = cluster(1, "1=10.0.0.1:7001,2=10.0.0.2:7001");
        let err = c.validate(true).unwrap_err().to_string();
        assert!(err.contains("cluster.ca_file"), "{err}");
        c.ca_file = PathBuf::from("cluster-ca.pem");
        c.validate(true).unwrap();
        c.insecure = true;
        let err = c.validate(true).unwrap_err().to_string();
        assert!(err.contains("cluster.insecure"), "{err}");
    }

    #[test]
    fn tls_off_keeps_the_cluster_on_loopback_unless_insecure() {
        cluster(1, "1=127.0.0.1:7001,2=127.0.0.2:7002,3=[::1]:7003")
            .validate(false)
            .unwrap();
        let mut local_name = cluster(1, "1=localhost:7001,2=LOCALHOST:7002");
        local_name.cluster_addr = "127.0.0.1:7001".to_string();
        local_name.validate(false).unwrap();

        for (peers, listen, bad) in [
            ("1=10.0.0.1:7001", "", "10.0.0.1:7001"),
            ("1=127.0.0.1:7001,2=10.0.0.2:7001", "", "10.0.0.2:7001"),
            (
                "1=127.0.0.1:7001,2=node2.example:7001",
                "",
                "node2.example:7001",
            ),
            ("1=127.0.0.1:7001", "0.0.0.0:7001", "0.0.0.0:7001"),
        ] {
            let mut c = cluster(1, peers);
            c.cluster_addr = listen.to_string();
            let err = c.validate(false).unwrap_err().to_string();
            assert!(
                err.contains(bad) && err.contains("cluster.insecure"),
                "{err}"
            );
            c.insecure = true;
            c.validate(false).unwrap();
        }
    }

    #[test]
    fn a_cluster_ca_without_tls_is_refused() {
        let mut c = cluster(1, "1=127.0.0.1:7001");
        c.ca_file = PathBuf::from("cluster-ca.pem");
        let err = c.validate(false).unwrap_err().to_string();
        assert!(err.contains("tls.cert_file"), "{err}");
    }

    #[test]
    fn hosts_drop_the_port_and_ipv6_brackets() {
        assert_eq!(peer_host("127.0.0.1:7001"), "127.0.0.1");
        assert_eq!(peer_host("[::1]:7001"), "::1");
        assert_eq!(peer_host("node1.example:7001"), "node1.example");
    }
}
