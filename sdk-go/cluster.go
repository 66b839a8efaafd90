package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import "context"

// ClusterStatus is the cluster as the node that answered sees it. A broker in single-node mode
// answers Mode "single-node" with the other fields empty.
type ClusterStatus struct {
	// Mode is "single-node" or "cluster".
	Mode string
	// NodeID is the answering node's id.
	NodeID uint64
	// LeaderID is the metadata group's leader; nil when there is none.
	LeaderID *uint64
	// Term is the metadata group's term.
	Term uint64
	// LastApplied is the metadata group's last applied index on the answering node.
	LastApplied *uint64
	// Membership is the answering node's part: "voter", "learner", "not a member yet" or
	// "removed" ("" in single-node mode).
	Membership string
	// Nodes are the metadata group's members.
	Nodes []ClusterNode
	// MovingPartitions are the partitions whose replicas are moving
	// ([Admin.RebalanceReplicas]): started, not yet complete.
	MovingPartitions uint32
	// ClusterID is the cluster's identity, which a node joining it can be given
	// (RAPIDMQ_CLUSTER__ID) so that it refuses other clusters; "" in single-node mode and on a
	// joining node that has not learned it yet.
	ClusterID string
}

// ClusterNode is a node of the cluster's node table.
type ClusterNode struct {
	ID uint64
	// ClusterAddr is the node-to-node address.
	ClusterAddr string
	// GRPCAddr and HTTPAddr are the client addresses; "" until the node registered.
	GRPCAddr string
	HTTPAddr string
	// Reachable says whether the answering node currently hears from it.
	Reachable bool
	// Role is "voter" or "learner".
	Role string
	// Matched is the last raft index the leader knows the node has (set by the leader only).
	Matched *uint64
}

// MembershipChange is what [Admin.AddNode] or [Admin.RemoveNode] did.
type MembershipChange struct {
	// Voters are the metadata group's voters afterwards.
	Voters []uint64
	// Note is for the operator (already a voter, few voters left); "" when there is nothing to say.
	Note string
}

// LeaderRebalance is what [Admin.RebalanceLeaders] started.
type LeaderRebalance struct {
	// Transfers are the leadership transfers started, summed over the nodes (each completes
	// within about an election timeout).
	Transfers uint64
	// Unreachable are the nodes that could not be asked (down or unreachable).
	Unreachable []uint64
}

// ReplicaMove is one partition's replicas before and after a move that
// [Admin.RebalanceReplicas] started (or planned), preferred leader first.
type ReplicaMove struct {
	// Tenant is the topic's tenant.
	Tenant string
	Topic  string
	// Partition is the partition index.
	Partition uint32
	// From are the replicas before the move, To those after it.
	From []uint64
	To   []uint64
}

// ClusterStatus is the cluster as the answering node sees it: its metadata leader and term and
// the node table.
func (a *Admin) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var s *C.RapidmqClusterStatus
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_cluster_status(h, cancel, &s, cerr)
	})
	if err != nil {
		return ClusterStatus{}, err
	}
	defer C.rapidmq_cluster_status_free(s)
	out := ClusterStatus{
		Mode:             goString(s.mode),
		NodeID:           uint64(s.node_id),
		Term:             uint64(s.term),
		Membership:       goString(s.membership),
		Nodes:            []ClusterNode{},
		MovingPartitions: uint32(s.moving_partitions),
		ClusterID:        goString(s.cluster_id),
	}
	if s.has_leader {
		out.LeaderID = Ptr(uint64(s.leader_id))
	}
	if s.has_last_applied {
		out.LastApplied = Ptr(uint64(s.last_applied))
	}
	for _, n := range items(s.nodes, s.nodes_len) {
		node := ClusterNode{
			ID:          uint64(n.id),
			ClusterAddr: goString(n.cluster_addr),
			GRPCAddr:    goString(n.grpc_addr),
			HTTPAddr:    goString(n.http_addr),
			Reachable:   bool(n.reachable),
			Role:        goString(n.role),
		}
		if n.has_matched {
			node.Matched = Ptr(uint64(n.matched))
		}
		out.Nodes = append(out.Nodes, node)
	}
	return out, nil
}

// AddNode adds node id, reached by the other nodes at clusterAddr, to the metadata group: a
// learner until it caught up, then a voter; it blocks until then, up to the request timeout.
// Errors: [ErrInvalidArgument] (single-node mode, bad address), [ErrUnavailable] (no leader;
// the node did not catch up: it stays a learner, add it again).
func (a *Admin) AddNode(ctx context.Context, id uint64, clusterAddr string) (MembershipChange, error) {
	var p pins
	defer p.Unpin()
	addr := p.str(clusterAddr)
	var c *C.RapidmqMembershipChange
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_add_node(h, C.uint64_t(id), addr, cancel, &c, cerr)
	})
	if err != nil {
		return MembershipChange{}, err
	}
	return membershipChangeFromC(c), nil
}

// RemoveNode removes node id from the metadata group. Errors: [ErrNodeNotFound] (not a member),
// [ErrInvalidArgument] (the last voter, single-node mode), [ErrUnavailable] (no leader).
func (a *Admin) RemoveNode(ctx context.Context, id uint64) (MembershipChange, error) {
	var c *C.RapidmqMembershipChange
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_remove_node(h, C.uint64_t(id), cancel, &c, cerr)
	})
	if err != nil {
		return MembershipChange{}, err
	}
	return membershipChangeFromC(c), nil
}

// RebalanceLeaders hands each partition's leadership back to its preferred replica, on every
// node, where that replica is caught up and reachable (nodes also do it on their own every
// cluster.leader_rebalance_interval_ms). A broker in single-node mode answers 0 transfers.
// Errors: [ErrPermissionDenied] (not a cluster admin).
func (a *Admin) RebalanceLeaders(ctx context.Context) (LeaderRebalance, error) {
	var r *C.RapidmqLeaderRebalance
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_rebalance_leaders(h, cancel, &r, cerr)
	})
	if err != nil {
		return LeaderRebalance{}, err
	}
	defer C.rapidmq_leader_rebalance_free(r)
	out := LeaderRebalance{Transfers: uint64(r.transfers), Unreachable: []uint64{}}
	for _, id := range items(r.unreachable, r.unreachable_len) {
		out.Unreachable = append(out.Unreachable, uint64(id))
	}
	return out, nil
}

// RebalanceReplicas moves partition replicas so each voting node holds an even share: replicas
// on nodes that no longer vote, or on the nodes in exclude (before removing them), go to other
// voters; then from the nodes holding the most to those holding the fewest; then preferred
// leaders are spread. It answers the moves started (with dryRun, planned and not started); each
// completes once its new replicas caught up, and [ClusterStatus.MovingPartitions] counts those
// under way. Errors: [ErrInvalidArgument] (single-node mode; the voters left are fewer than
// some topic's replication factor), [ErrNodeNotFound] (an excluded node is not a member),
// [ErrPermissionDenied] (not a cluster admin).
func (a *Admin) RebalanceReplicas(ctx context.Context, exclude []uint64, dryRun bool) ([]ReplicaMove, error) {
	var p pins
	defer p.Unpin()
	ids, count := p.u64s(exclude)
	var list *C.RapidmqReplicaMoveList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_rebalance_replicas(h, ids, count, C.bool(dryRun), cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_replica_move_list_free(list)
	out := []ReplicaMove{}
	for _, m := range items(list.items, list.len) {
		move := ReplicaMove{
			Tenant:    goString(m.tenant),
			Topic:     goString(m.topic),
			Partition: uint32(m.partition),
			From:      []uint64{},
			To:        []uint64{},
		}
		for _, id := range items(m.from, m.from_len) {
			move.From = append(move.From, uint64(id))
		}
		for _, id := range items(m.to, m.to_len) {
			move.To = append(move.To, uint64(id))
		}
		out = append(out, move)
	}
	return out, nil
}

// membershipChangeFromC copies c and frees it.
func membershipChangeFromC(c *C.RapidmqMembershipChange) MembershipChange {
	defer C.rapidmq_membership_change_free(c)
	out := MembershipChange{Voters: []uint64{}, Note: goString(c.note)}
	for _, v := range items(c.voters, c.voters_len) {
		out.Voters = append(out.Voters, uint64(v))
	}
	return out
}
