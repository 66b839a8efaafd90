//! Three cluster nodes whose node-to-node links each run through their own in-process TCP proxy
//! (node i reaches node j through proxy i→j: each node's `--peers` names the proxies as its view
//! of the others), and the seeded nemesis of the cluster fault tests (`cluster_faults.rs`,
//! `cluster_nemesis.rs`): kill a node (-9) and restart it, pause one (SIGSTOP/SIGCONT), cut a
//! link (both ways, one way, reset, delayed) or isolate a node from both others. Clients reach
//! the nodes directly; only the links between nodes fail.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use rapidmq_testkit::proxy::{Direction, Fault, LinkProxy};

use super::cluster::free_ports;
use super::{BrokerOptions, TestBroker};

pub const NODES: usize = 3;

/// The three nodes, and the proxy of every directed link.
pub struct ProxiedCluster {
    pub nodes: Vec<TestBroker>,
    /// `links[(i, j)]`: how node i reaches node j.
    pub links: BTreeMap<(usize, usize), LinkProxy>,
    /// Each node's client gRPC URL; a restarted node gets new client ports.
    pub urls: Arc<Mutex<Vec<String>>>,
}

impl ProxiedCluster {
    /// Starts the nodes (ids 1..=3), each with `env` besides the cluster flags.
    pub async fn start(env: &[(String, String)]) -> ProxiedCluster {
        let ports = free_ports(NODES);
        let real = |j: usize| format!("127.0.0.1:{}", ports[j]);
        let mut links = BTreeMap::new();
        for i in 0..NODES {
            for j in (0..NODES).filter(|j| *j != i) {
                let target = real(j).parse().expect("an address");
                let proxy = LinkProxy::start(target).await.expect("start a link proxy");
                links.insert((i, j), proxy);
            }
        }
        let cluster_id = format!("proxied-{}", real(0).replace([':', '.'], "-"));
        let nodes: Vec<TestBroker> = (0..NODES)
            .map(|i| {
                let peers = (0..NODES)
                    .map(|j| {
                        let addr = if j == i {
                            real(j)
                        } else {
                            links[&(i, j)].addr().to_string()
                        };
                        format!("{}={addr}", j + 1)
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                // Each node names its peers by its own proxies, so the lists differ: the
                // cluster id is set rather than derived from them.
                let mut env = env.to_vec();
                env.push(("RAPIDMQ_CLUSTER__ID".into(), cluster_id.clone()));
                let options = BrokerOptions {
                    env,
                    args: vec![
                        "--node-id".into(),
                        (i + 1).to_string(),
                        "--peers".into(),
                        peers,
                    ],
                };
                tokio::task::block_in_place(|| TestBroker::start_with(options))
            })
            .collect();
        let urls = Arc::new(Mutex::new(nodes.iter().map(TestBroker::grpc_url).collect()));
        ProxiedCluster { nodes, links, urls }
    }

    /// Every node's current client gRPC URL.
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().unwrap().clone()
    }

    pub fn heal_links(&self) {
        for proxy in self.links.values() {
            proxy.set(Fault::Pass);
        }
    }

    /// Injects `fault` (a kill or pause takes effect before this returns).
    pub fn begin(&mut self, fault: &NemesisFault) {
        let (node, other) = (fault.node, fault.other);
        match fault.kind {
            FaultKind::Kill => self.nodes[node].kill(),
            FaultKind::Pause => tokio::task::block_in_place(|| self.nodes[node].pause()),
            FaultKind::Isolate => {
                for j in (0..NODES).filter(|j| *j != node) {
                    self.links[&(node, j)].set(Fault::Blackhole);
                    self.links[&(j, node)].set(Fault::Blackhole);
                }
            }
            FaultKind::CutBothWays => {
                self.links[&(node, other)].set(Fault::Blackhole);
                self.links[&(other, node)].set(Fault::Blackhole);
            }
            FaultKind::CutOneWay(direction) => {
                self.links[&(node, other)].set(Fault::OneWay(direction));
            }
            FaultKind::Delay(delay) => {
                self.links[&(node, other)].set(Fault::Delay(delay));
                self.links[&(other, node)].set(Fault::Delay(delay));
            }
            FaultKind::Reset => {
                self.links[&(node, other)].set(Fault::Reset);
                self.links[&(other, node)].set(Fault::Reset);
            }
        }
    }

    /// Heals `fault`: restarts a killed node (waiting until it is ready; its URL changes),
    /// resumes a paused one, lets every link pass again.
    pub fn end(&mut self, fault: &NemesisFault) {
        let node = fault.node;
        match fault.kind {
            FaultKind::Kill => {
                tokio::task::block_in_place(|| self.nodes[node].start_again());
                self.urls.lock().unwrap()[node] = self.nodes[node].grpc_url();
            }
            FaultKind::Pause => tokio::task::block_in_place(|| self.nodes[node].resume()),
            _ => {}
        }
        self.heal_links();
    }
}

/// What the nemesis does to `node` (and, for a link, to the link between it and `other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Kill,
    Pause,
    Isolate,
    CutBothWays,
    CutOneWay(Direction),
    Delay(Duration),
    /// Resets both directions of the link once (held for no time).
    Reset,
}

/// One step of the nemesis: a fault, how long it is held, and the quiet time after it heals.
#[derive(Debug, Clone, Copy)]
pub struct NemesisFault {
    pub kind: FaultKind,
    pub node: usize,
    pub other: usize,
    pub hold: Duration,
    pub quiet: Duration,
}

impl NemesisFault {
    /// The next step of the schedule `rng` (the draws of `cluster_faults.rs` since it began, so
    /// its seeds replay the same faults).
    pub fn next(rng: &mut StdRng) -> NemesisFault {
        let hold = Duration::from_millis(rng.random_range(300..3000));
        let node = rng.random_range(0..NODES);
        let other = (node + rng.random_range(1..NODES)) % NODES;
        let kind = match rng.random_range(0..7) {
            0 => FaultKind::Kill,
            1 => FaultKind::Pause,
            2 => FaultKind::Isolate,
            3 => FaultKind::CutBothWays,
            4 => FaultKind::CutOneWay(if rng.random_bool(0.5) {
                Direction::ToTarget
            } else {
                Direction::FromTarget
            }),
            5 => FaultKind::Delay(Duration::from_millis(rng.random_range(20..200))),
            _ => FaultKind::Reset,
        };
        let hold = if kind == FaultKind::Reset {
            Duration::ZERO
        } else {
            hold
        };
        let quiet = Duration::from_millis(rng.random_range(200..1000));
        NemesisFault {
            kind,
            node,
            other,
            hold,
            quiet,
        }
    }

    /// The fault's name in a run's summary.
    pub fn name(&self) -> &'static str {
        match self.kind {
            FaultKind::Kill => "kill -9 and restart",
            FaultKind::Pause => "pause",
            FaultKind::Isolate => "isolate a node",
            FaultKind::CutBothWays => "cut a link both ways",
            FaultKind::CutOneWay(_) => "cut a link one way",
            FaultKind::Delay(_) => "delay a link",
            FaultKind::Reset => "reset a link",
        }
    }
}
