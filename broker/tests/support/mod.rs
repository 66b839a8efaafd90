//! What the in-process cluster tests share: a node's `Cluster` server on 127.0.0.1 with its
//! group registry and heartbeat task ([`Host`]), and finding a group's leader by waiting on
//! openraft's metrics (never on a sleep).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{BasicNode, Raft, RaftTypeConfig, ServerState};
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
pub async fn try_leader<C, SM>(running: &[(u64, &Raft<C, SM>)]) -> Result<u64, String>
where
    C: RaftTypeConfig<NodeId = u64>,
    SM: RaftStateMachine<C>,
{
    let ids: Vec<u64> = running.iter().map(|(id, _)| *id).collect();
    let metrics = running[0]
        .1
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some_and(|l| ids.contains(&l)),
            "the group has a running leader",
        )
        .await
        .map_err(|err| err.to_string())?;
    let leader = metrics.current_leader.unwrap_or_default();
    // A candidate names itself before it won: the leader is the one that says it leads, and
    // it takes writes once a quorum acked it (its lease).
    let (_, leading) = running
        .iter()
        .find(|(id, _)| *id == leader)
        .ok_or("the leader is not running")?;
    leading
        .wait(Some(WAIT))
        .metrics(
            |m| m.state == ServerState::Leader && m.last_quorum_acked.is_some(),
            format!("node {leader} leads with a quorum"),
        )
        .await
        .map_err(|err| err.to_string())?;
    for (id, raft) in &running[1..] {
        raft.wait(Some(WAIT))
            .current_leader(leader, format!("node {id} follows {leader}"))
            .await
            .map_err(|err| err.to_string())?;
    }
    Ok(leader)
}
