//! What the in-process cluster tests share: a node's `Cluster` server on 127.0.0.1 with its
//! group registry and heartbeat task ([`Host`]), and finding a group's leader by waiting on
//! openraft's metrics (never on a sleep).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::WatchReceiverOf;
use openraft::{BasicNode, Raft, RaftMetrics, RaftTypeConfig, ServerState};
use rapidmq_broker::cluster::{Groups, Peers, service::HEARTBEAT};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

#[allow(dead_code)] // Used by the partition group tests only.
pub mod gate;

/// How long any wait on raft metrics may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// One node's network side: its server, its registry of groups, its peers, its heartbeats.
pub struct Host {
    pub id: u64,
    pub addr: SocketAddr,
    pub groups: Arc<Groups>,
    pub peers: Peers,
    server: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    heartbeats: Option<JoinHandle<()>>,
}

impl Host {
    /// Starts node `id`'s server on `addr` (port 0 the first time, the same address on a
    /// restart). Groups are added to [`Host::groups`] afterwards; messages for a group not yet
    /// added fail, and raft retries them.
    pub async fn start(id: u64, addr: SocketAddr) -> Host {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let groups = Groups::new();
        let (stop, mut stopped) = watch::channel(false);
        let service = groups.service(stop.subscribe());
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
                .unwrap();
        });
        let heartbeats = groups.drive_heartbeats(HEARTBEAT);
        Host {
            id,
            addr,
            groups,
            peers: Peers::new(),
            server: Some((stop, server)),
            heartbeats: Some(heartbeats),
        }
    }

    /// Stops the server, the heartbeats and the peer connections (shut the groups down first).
    pub async fn stop(&mut self) {
        if let Some(heartbeats) = self.heartbeats.take() {
            heartbeats.abort();
        }
        if let Some((stop, server)) = self.server.take() {
            let _ = stop.send(true);
            server.await.unwrap();
        }
        self.peers.close();
    }
}

/// The members of a group hosted on `hosts`.
pub fn members<'a>(hosts: impl IntoIterator<Item = &'a Host>) -> BTreeMap<u64, BasicNode> {
    hosts
        .into_iter()
        .map(|host| (host.id, BasicNode::new(host.addr)))
        .collect()
}

/// The leader of a group as its running replicas `(node id, raft)` agree on it, once they do
/// and it has a quorum's ack.
pub async fn leader<C, SM>(running: &[(u64, &Raft<C, SM>)]) -> u64
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
{
    try_leader(running)
        .await
        .unwrap_or_else(|err| panic!("no agreed leader: {err}"))
}

/// [`leader`], or why none was found in time (a replica that was shut down meanwhile, say).
///
/// The leader is the replica that says it leads and has a quorum's ack (its lease), once every
/// other running replica names it too: a candidate names itself before it won, a leader that
/// handed its group over says it leads until it learns of the next one, and a follower names
/// the previous leader until the new one's first message reaches it. Re-checked whenever any
/// replica's metrics change.
pub async fn try_leader<C, SM>(running: &[(u64, &Raft<C, SM>)]) -> Result<u64, String>
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
{
    let mut watches: Vec<(u64, WatchReceiverOf<C, RaftMetrics<C>>)> = running
        .iter()
        .map(|(id, raft)| (*id, raft.metrics()))
        .collect();
    let agreed = |watches: &[(u64, WatchReceiverOf<C, RaftMetrics<C>>)]| {
        let metrics: Vec<(u64, RaftMetrics<C>)> = watches
            .iter()
            .map(|(id, watch)| (*id, watch.borrow_watched().clone()))
            .collect();
        metrics.iter().find_map(|(id, m)| {
            let leads = m.state == ServerState::Leader && m.last_quorum_acked.is_some();
            let followed = metrics
                .iter()
                .all(|(other, o)| other == id || o.current_leader == Some(*id));
            (leads && followed).then_some(*id)
        })
    };
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(id) = agreed(&watches) {
                return Ok(id);
            }
            let changes = watches
                .iter_mut()
                .map(|(_, watch)| Box::pin(watch.changed()));
            if futures::future::select_all(changes).await.0.is_err() {
                return Err("a replica stopped".to_string());
            }
        }
    })
    .await;
    match found {
        Ok(found) => found,
        Err(_) => {
            let states: Vec<String> = watches
                .iter()
                .map(|(id, watch)| format!("node {id}: {}", *watch.borrow_watched()))
                .collect();
            Err(format!(
                "no agreed leader with a quorum after {WAIT:?}: {states:?}"
            ))
        }
    }
}
