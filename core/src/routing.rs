//! Client routing (docs/clustering.md "Client routing"): where each partition's leader is, and
//! one lazy connection per node.
//!
//! The core learns a topic's metadata (`GetMetadata` on the seed connection) on first use, and
//! again when an answer suggests it is stale. A [`LeaderHint`] in an `UNAVAILABLE` answer is
//! adopted only when its term is newer than the one known for the partition (KIP-951): an old
//! node's late answer cannot undo a newer leader. A partition whose leader is unknown, or has
//! no client address (a single-node broker lists no nodes; an older broker has no
//! `GetMetadata`), goes to the seed connection, exactly as without routing.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;
use rapidmq_proto::v1::{GetMetadataResponse, LeaderHint};
use tonic::transport::Channel;

/// A partition's leader as the client knows it: node 0 while unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Leader {
    pub(crate) node: u64,
    pub(crate) term: u64,
}

/// What the client knows of where partitions are led.
#[derive(Default)]
pub(crate) struct Routes {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Each node's client gRPC address (`host:port`).
    nodes: HashMap<u64, String>,
    /// Per topic, per partition.
    topics: HashMap<String, Vec<Leader>>,
    /// Topics whose metadata should be asked for (again).
    stale: HashSet<String>,
    /// The open connection of each node, made on first use.
    channels: HashMap<u64, Channel>,
}

impl Routes {
    /// Takes in a `GetMetadata` answer: the nodes' addresses, and each partition's leader
    /// unless the client knows one of a newer term.
    pub(crate) fn learn(&self, metadata: &GetMetadataResponse) {
        let mut state = self.state.lock();
        // The node table as the cluster has it now: a node removed from the cluster is
        // forgotten, with its connection. (An answer without nodes, from a failed request or a
        // broker without `GetMetadata`, says nothing about them.)
        if !metadata.nodes.is_empty() {
            let listed: HashSet<u64> = metadata.nodes.iter().map(|node| node.id).collect();
            state.nodes.retain(|id, _| listed.contains(id));
            state.channels.retain(|id, _| listed.contains(id));
        }
        for node in &metadata.nodes {
            if !node.grpc_addr.is_empty() {
                state.nodes.insert(node.id, node.grpc_addr.clone());
            }
        }
        for topic in &metadata.topics {
            state.stale.remove(&topic.name);
            let known = state.topics.entry(topic.name.clone()).or_default();
            for p in &topic.partitions {
                let index = p.partition as usize;
                if known.len() <= index {
                    known.resize(index + 1, Leader::default());
                }
                let learned = Leader {
                    node: p.leader,
                    term: p.term,
                };
                if learned.term >= known[index].term {
                    known[index] = learned;
                }
            }
        }
    }

    /// Adopts `hint` when its term is newer than the one known for its partition; whether it
    /// did. A hint without a leader (an election runs) only marks the topic stale.
    pub(crate) fn adopt(&self, hint: &LeaderHint) -> bool {
        let mut state = self.state.lock();
        if hint.leader == 0 {
            state.stale.insert(hint.topic.clone());
            return false;
        }
        let index = hint.partition as usize;
        let known = state.topics.entry(hint.topic.clone()).or_default();
        if known.len() <= index {
            known.resize(index + 1, Leader::default());
        }
        let current = known[index];
        // With no leader known (its node failed), one of the same term is news too.
        let newer = hint.term > current.term || (current.node == 0 && hint.term >= current.term);
        if !newer {
            return false;
        }
        known[index] = Leader {
            node: hint.leader,
            term: hint.term,
        };
        if !hint.grpc_addr.is_empty() {
            state.nodes.insert(hint.leader, hint.grpc_addr.clone());
        }
        true
    }

    /// The node to send `partition` of `topic` to, and its address: `None` for the seed.
    pub(crate) fn leader(&self, topic: &str, partition: u32) -> Option<(u64, String)> {
        let state = self.state.lock();
        let leader = state.topics.get(topic)?.get(partition as usize)?;
        let addr = state.nodes.get(&leader.node)?;
        Some((leader.node, addr.clone()))
    }

    /// Every node with a client address, by id: none on a single-node broker or an older one.
    pub(crate) fn nodes(&self) -> Vec<u64> {
        let mut nodes: Vec<u64> = self.state.lock().nodes.keys().copied().collect();
        nodes.sort_unstable();
        nodes
    }

    /// Node `node`'s client address, if known.
    pub(crate) fn node_addr(&self, node: u64) -> Option<String> {
        self.state.lock().nodes.get(&node).cloned()
    }

    /// The leader known for a partition (node 0 and term 0 when none).
    #[cfg(test)]
    pub(crate) fn known(&self, topic: &str, partition: u32) -> Leader {
        let state = self.state.lock();
        state
            .topics
            .get(topic)
            .and_then(|t| t.get(partition as usize))
            .copied()
            .unwrap_or_default()
    }

    /// Whether `topic`'s metadata should be asked for: never learned, or marked stale.
    pub(crate) fn needs_metadata(&self, topic: &str) -> bool {
        let state = self.state.lock();
        !state.topics.contains_key(topic) || state.stale.contains(topic)
    }

    /// Marks every known topic stale (an error that names no topic).
    pub(crate) fn mark_all_stale(&self) {
        let mut state = self.state.lock();
        let topics: Vec<String> = state.topics.keys().cloned().collect();
        state.stale.extend(topics);
    }

    /// Node `node` could not be reached: its connection is dropped and the partitions it led
    /// go to the seed until the client learns their leader again (the seed forwards them).
    pub(crate) fn node_failed(&self, node: u64) {
        let mut state = self.state.lock();
        state.channels.remove(&node);
        let mut stale = Vec::new();
        for (topic, leaders) in &mut state.topics {
            for leader in leaders.iter_mut().filter(|l| l.node == node) {
                leader.node = 0;
                stale.push(topic.clone());
            }
        }
        state.stale.extend(stale);
    }

    /// The open connection of `node`, if there is one.
    pub(crate) fn channel(&self, node: u64) -> Option<Channel> {
        self.state.lock().channels.get(&node).cloned()
    }

    /// Keeps `channel` as `node`'s connection (the first one made wins).
    pub(crate) fn keep_channel(&self, node: u64, channel: Channel) -> Channel {
        self.state
            .lock()
            .channels
            .entry(node)
            .or_insert(channel)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapidmq_proto::v1::{NodeMetadata, PartitionMetadata, TopicMetadata};

    fn metadata(leader: u64, term: u64) -> GetMetadataResponse {
        GetMetadataResponse {
            nodes: (1..=3)
                .map(|id| NodeMetadata {
                    id,
                    grpc_addr: format!("127.0.0.1:900{id}"),
                    http_addr: String::new(),
                })
                .collect(),
            topics: vec![TopicMetadata {
                name: "orders".into(),
                partitions: vec![PartitionMetadata {
                    partition: 0,
                    leader,
                    term,
                    replicas: vec![1, 2, 3],
                }],
            }],
        }
    }

    fn hint(leader: u64, term: u64) -> LeaderHint {
        LeaderHint {
            topic: "orders".into(),
            partition: 0,
            term,
            leader,
            grpc_addr: format!("127.0.0.1:900{leader}"),
        }
    }

    #[test]
    fn a_hint_of_a_newer_term_is_adopted() {
        let routes = Routes::default();
        routes.learn(&metadata(1, 4));
        assert!(routes.adopt(&hint(2, 5)));
        assert_eq!(routes.known("orders", 0), Leader { node: 2, term: 5 });
        assert_eq!(
            routes.leader("orders", 0),
            Some((2, "127.0.0.1:9002".to_string()))
        );
    }

    #[test]
    fn a_hint_of_a_stale_or_equal_term_is_ignored() {
        let routes = Routes::default();
        routes.learn(&metadata(2, 5));
        assert!(!routes.adopt(&hint(1, 4)));
        assert!(!routes.adopt(&hint(3, 5)));
        assert_eq!(routes.known("orders", 0), Leader { node: 2, term: 5 });
    }

    #[test]
    fn metadata_older_than_an_adopted_hint_does_not_undo_it() {
        let routes = Routes::default();
        routes.learn(&metadata(1, 4));
        assert!(routes.adopt(&hint(3, 6)));
        routes.learn(&metadata(1, 4));
        assert_eq!(routes.known("orders", 0), Leader { node: 3, term: 6 });
        routes.learn(&metadata(2, 7));
        assert_eq!(routes.known("orders", 0), Leader { node: 2, term: 7 });
    }

    #[test]
    fn without_node_addresses_everything_goes_to_the_seed() {
        let routes = Routes::default();
        let mut single = metadata(1, 0);
        single.nodes.clear();
        routes.learn(&single);
        assert!(!routes.needs_metadata("orders"));
        assert_eq!(routes.leader("orders", 0), None);
        assert_eq!(routes.leader("other", 0), None);
        assert!(routes.nodes().is_empty());
    }

    #[test]
    fn nodes_are_listed_by_id_with_their_addresses() {
        let routes = Routes::default();
        routes.learn(&metadata(1, 4));
        assert_eq!(routes.nodes(), vec![1, 2, 3]);
        assert_eq!(routes.node_addr(2).as_deref(), Some("127.0.0.1:9002"));
        assert_eq!(routes.node_addr(4), None);
    }

    #[test]
    fn a_node_removed_from_the_cluster_is_forgotten() {
        let routes = Routes::default();
        routes.learn(&metadata(1, 4));
        let mut without_3 = metadata(1, 4);
        without_3.nodes.retain(|node| node.id != 3);
        routes.learn(&without_3);
        assert_eq!(routes.nodes(), vec![1, 2]);
        assert_eq!(routes.node_addr(3), None);
        // A failed request (no nodes at all) forgets nothing.
        let mut failed = metadata(1, 4);
        failed.nodes.clear();
        routes.learn(&failed);
        assert_eq!(routes.nodes(), vec![1, 2]);
    }

    #[test]
    fn a_failed_node_sends_its_partitions_to_the_seed_until_relearned() {
        let routes = Routes::default();
        routes.learn(&metadata(1, 4));
        routes.node_failed(1);
        assert_eq!(routes.leader("orders", 0), None);
        assert!(routes.needs_metadata("orders"));
        // The term is kept: the old leader's hint of the same term is not taken back.
        assert!(!routes.adopt(&hint(1, 3)));
        assert!(routes.adopt(&hint(2, 4)));
        assert_eq!(routes.known("orders", 0), Leader { node: 2, term: 4 });
    }

    #[test]
    fn a_hint_without_a_leader_only_marks_the_topic_stale() {
        let routes = Routes::default();
        routes.learn(&metadata(1, 4));
        assert!(!routes.adopt(&hint(0, 9)));
        assert!(routes.needs_metadata("orders"));
        assert_eq!(routes.known("orders", 0), Leader { node: 1, term: 4 });
    }
}
