//! Cluster administration on a client: the cluster as the answering node sees it, adding and
//! removing nodes of the metadata group, handing partition leadership back to the preferred
//! replicas and moving partition replicas between nodes (`rapidmq_core::Admin::{cluster_status,
//! add_node, remove_node, rebalance_leaders, rebalance_replicas}`). A single-node broker answers
//! `cluster_status` with mode `single-node`.

use rapidmq_core as core;

use crate::admin::{admin_call, text};
use crate::arena::{Arena, Owned};
use crate::buffer::{RapidmqSlice, RapidmqStr};
use crate::cancel::RapidmqCancel;
use crate::client::RapidmqClient;
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};

/// A node of the cluster's node table.
#[repr(C)]
pub struct RapidmqClusterNode {
    /// Node id.
    pub id: u64,
    /// Node-to-node address.
    pub cluster_addr: RapidmqSlice,
    /// Client gRPC address; empty until the node registered.
    pub grpc_addr: RapidmqSlice,
    /// Client HTTP address; empty until the node registered.
    pub http_addr: RapidmqSlice,
    /// Whether the answering node currently hears from it.
    pub reachable: bool,
    /// `voter` or `learner`.
    pub role: RapidmqSlice,
    /// Whether `matched` is set (answered by the leader only).
    pub has_matched: bool,
    /// The last raft index the leader knows the node has.
    pub matched: u64,
}

/// The cluster as the answering node sees it; free with `rapidmq_cluster_status_free`.
#[repr(C)]
pub struct RapidmqClusterStatus {
    /// `single-node` (the other fields empty) or `cluster`.
    pub mode: RapidmqSlice,
    /// The answering node's id.
    pub node_id: u64,
    /// Whether the metadata group has a leader (`leader_id` is set).
    pub has_leader: bool,
    /// The metadata group's leader.
    pub leader_id: u64,
    /// The metadata group's term.
    pub term: u64,
    /// Whether `last_applied` is set.
    pub has_last_applied: bool,
    /// The metadata group's last applied index on the answering node.
    pub last_applied: u64,
    /// `voter`, `learner`, `not a member yet` or `removed` (empty in single-node mode).
    pub membership: RapidmqSlice,
    /// The metadata group's members.
    pub nodes: *const RapidmqClusterNode,
    /// Number of nodes.
    pub nodes_len: usize,
    /// Partitions whose replicas are moving (`rapidmq_admin_rebalance_replicas`): started, not
    /// yet complete.
    pub moving_partitions: u32,
    /// The cluster's identity; empty in single-node mode and on a joining node that has not
    /// learned it yet.
    pub cluster_id: RapidmqSlice,
}

/// What `rapidmq_admin_add_node` or `rapidmq_admin_remove_node` did; free with
/// `rapidmq_membership_change_free`.
#[repr(C)]
pub struct RapidmqMembershipChange {
    /// The metadata group's voters afterwards.
    pub voters: *const u64,
    /// Number of voters.
    pub voters_len: usize,
    /// For the operator (already a voter, few voters left); empty when there is nothing to say.
    pub note: RapidmqSlice,
}

/// What `rapidmq_admin_rebalance_leaders` started; free with `rapidmq_leader_rebalance_free`.
#[repr(C)]
pub struct RapidmqLeaderRebalance {
    /// Leadership transfers started, summed over the nodes (each completes within about an
    /// election timeout).
    pub transfers: u64,
    /// Nodes that could not be asked (down or unreachable).
    pub unreachable: *const u64,
    /// Number of unreachable nodes.
    pub unreachable_len: usize,
}

/// One partition's replicas before and after a move, preferred leader first.
#[repr(C)]
pub struct RapidmqReplicaMove {
    /// The topic's tenant.
    pub tenant: RapidmqSlice,
    /// Topic name.
    pub topic: RapidmqSlice,
    /// Partition index.
    pub partition: u32,
    /// The replicas before the move.
    pub from: *const u64,
    /// Number of replicas before the move.
    pub from_len: usize,
    /// The replicas after it.
    pub to: *const u64,
    /// Number of replicas after the move.
    pub to_len: usize,
}

/// The moves `rapidmq_admin_rebalance_replicas` started (or planned); free with
/// `rapidmq_replica_move_list_free`.
#[repr(C)]
pub struct RapidmqReplicaMoveList {
    /// The moves.
    pub items: *const RapidmqReplicaMove,
    /// Number of moves.
    pub len: usize,
}

fn cluster_status(arena: &mut Arena, s: core::ClusterStatus) -> RapidmqClusterStatus {
    let nodes = s
        .nodes
        .into_iter()
        .map(|n| RapidmqClusterNode {
            id: n.id,
            cluster_addr: arena.bytes(n.cluster_addr),
            grpc_addr: arena.bytes(n.grpc_addr),
            http_addr: arena.bytes(n.http_addr),
            reachable: n.reachable,
            role: arena.bytes(n.role),
            has_matched: n.matched.is_some(),
            matched: n.matched.unwrap_or_default(),
        })
        .collect();
    let (nodes, nodes_len) = arena.array(nodes);
    RapidmqClusterStatus {
        mode: arena.bytes(s.mode),
        node_id: s.node_id,
        has_leader: s.leader_id.is_some(),
        leader_id: s.leader_id.unwrap_or_default(),
        term: s.term,
        has_last_applied: s.last_applied.is_some(),
        last_applied: s.last_applied.unwrap_or_default(),
        membership: arena.bytes(s.membership),
        nodes,
        nodes_len,
        moving_partitions: s.moving_partitions,
        cluster_id: arena.bytes(s.cluster_id),
    }
}

fn replica_move(arena: &mut Arena, m: core::ReplicaMove) -> RapidmqReplicaMove {
    let (from, from_len) = arena.array(m.from);
    let (to, to_len) = arena.array(m.to);
    RapidmqReplicaMove {
        tenant: arena.bytes(m.tenant),
        topic: arena.bytes(m.topic),
        partition: m.partition,
        from,
        from_len,
        to,
        to_len,
    }
}

/// The `len` node ids at `ids` (NULL allowed when `len` is 0).
fn node_ids(ids: *const u64, len: usize, what: &str) -> FfiResult<Vec<u64>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ids.is_null() {
        return Err(FfiError::null(what));
    }
    Ok(unsafe { std::slice::from_raw_parts(ids, len) }.to_vec())
}

fn membership_change(change: core::MembershipChange) -> *mut RapidmqMembershipChange {
    let mut arena = Arena::default();
    let (voters, voters_len) = arena.array(change.voters);
    let view = RapidmqMembershipChange {
        voters,
        voters_len,
        note: arena.bytes(change.note),
    };
    Owned::into_raw(view, arena)
}

/// The cluster as the answering node sees it: metadata leader, term and node table; free with
/// `rapidmq_cluster_status_free`. A single-node broker answers mode `single-node`.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_cluster_status(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqClusterStatus,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let status = admin_call(client, cancel, |a| async move { a.cluster_status().await })?;
        let mut arena = Arena::default();
        let view = cluster_status(&mut arena, status);
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Adds node `id`, reached by the other nodes at `cluster_addr`, to the metadata group; blocks
/// until it is a voter, up to the request timeout. Free the result with
/// `rapidmq_membership_change_free`. Errors: `INVALID_ARGUMENT` (single-node mode, bad
/// address), `UNAVAILABLE` (no leader; the node did not catch up).
///
/// # Safety
/// `client` is live; `cluster_addr` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_add_node(
    client: *const RapidmqClient,
    id: u64,
    cluster_addr: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqMembershipChange,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let addr = text(cluster_addr, "cluster_addr")?;
        let change = admin_call(
            client,
            cancel,
            |a| async move { a.add_node(id, addr).await },
        )?;
        put(out, "out", membership_change(change))
    })
}

/// Removes node `id` from the metadata group. Free the result with
/// `rapidmq_membership_change_free`. Errors: `NODE_NOT_FOUND` (not a member),
/// `INVALID_ARGUMENT` (the last voter, single-node mode), `UNAVAILABLE` (no leader).
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_remove_node(
    client: *const RapidmqClient,
    id: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqMembershipChange,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let change = admin_call(client, cancel, |a| async move { a.remove_node(id).await })?;
        put(out, "out", membership_change(change))
    })
}

/// Hands each partition's leadership back to its preferred replica, on every node, where that
/// replica is caught up and reachable. Free the result with `rapidmq_leader_rebalance_free`. A
/// single-node broker answers 0 transfers. Errors: `PERMISSION_DENIED` (not a cluster admin).
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_rebalance_leaders(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqLeaderRebalance,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let rebalance = admin_call(
            client,
            cancel,
            |a| async move { a.rebalance_leaders().await },
        )?;
        let mut arena = Arena::default();
        let (unreachable, unreachable_len) = arena.array(rebalance.unreachable);
        let view = RapidmqLeaderRebalance {
            transfers: rebalance.transfers,
            unreachable,
            unreachable_len,
        };
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Moves partition replicas so each voting node holds an even share: replicas on nodes that no
/// longer vote, or on the `exclude_len` nodes at `exclude` (before removing them), go to other
/// voters; then from the nodes holding the most to those holding the fewest; then preferred
/// leaders are spread. Answers the moves started (with `dry_run`, planned and not started); free
/// the list with `rapidmq_replica_move_list_free`. Errors: `INVALID_ARGUMENT` (single-node mode;
/// the voters left are fewer than some topic's replication factor), `NODE_NOT_FOUND` (an
/// excluded node is not a member), `PERMISSION_DENIED` (not a cluster admin).
///
/// # Safety
/// `client` is live; the `exclude_len` ids at `exclude` (NULL when 0) are readable; `out` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_rebalance_replicas(
    client: *const RapidmqClient,
    exclude: *const u64,
    exclude_len: usize,
    dry_run: bool,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqReplicaMoveList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let exclude = node_ids(exclude, exclude_len, "exclude")?;
        let moves = admin_call(client, cancel, |a| async move {
            a.rebalance_replicas(&exclude, dry_run).await
        })?;
        let mut arena = Arena::default();
        let items: Vec<_> = moves
            .into_iter()
            .map(|m| replica_move(&mut arena, m))
            .collect();
        let (items, len) = arena.array(items);
        let view = RapidmqReplicaMoveList { items, len };
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Frees a cluster status. NULL is ignored.
///
/// # Safety
/// `status` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_cluster_status_free(status: *mut RapidmqClusterStatus) {
    guard_or((), || unsafe { Owned::free(status) })
}

/// Frees a membership change. NULL is ignored.
///
/// # Safety
/// `change` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_membership_change_free(change: *mut RapidmqMembershipChange) {
    guard_or((), || unsafe { Owned::free(change) })
}

/// Frees a leader rebalance. NULL is ignored.
///
/// # Safety
/// `rebalance` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_leader_rebalance_free(rebalance: *mut RapidmqLeaderRebalance) {
    guard_or((), || unsafe { Owned::free(rebalance) })
}

/// Frees a replica move list. NULL is ignored.
///
/// # Safety
/// `moves` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_replica_move_list_free(moves: *mut RapidmqReplicaMoveList) {
    guard_or((), || unsafe { Owned::free(moves) })
}
