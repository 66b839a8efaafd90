package rapidmq_test

// Cluster administration through the core: a one-node cluster (serve --node-id 1 --peers
// 1=127.0.0.1:PORT) and a broker in single-node mode.

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// freePort is a free port for a cluster listener (bound, then released for the broker to take).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestAOneNodeClusterReportsItselfRefusesBadRemovalsAndRebalancesNothing(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := startBrokerWith(t, "--node-id", "1", "--peers", "1="+addr)
	admin := connect(t, b).Admin()
	ctx := ctxT(t)

	var status rapidmq.ClusterStatus
	eventually(t, "node 1 to lead", func() bool {
		s, err := admin.ClusterStatus(ctx)
		status = s
		return err == nil && s.LeaderID != nil && *s.LeaderID == 1
	})
	if status.Mode != "cluster" || status.NodeID != 1 || status.Membership != "voter" || status.Term < 1 {
		t.Fatalf("status: %+v", status)
	}
	if len(status.Nodes) != 1 || status.Nodes[0].ID != 1 || status.Nodes[0].Role != "voter" || status.Nodes[0].ClusterAddr != addr {
		t.Fatalf("nodes: %+v", status.Nodes)
	}

	_, err := admin.RemoveNode(ctx, 9)
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrNodeNotFound) || !errors.As(err, &e) || e.Code != 5006 ||
		!strings.Contains(e.Message, "node 9 is not a member") {
		t.Fatalf("remove node 9: want NODE_NOT_FOUND (5006), got %v", err)
	}

	_, err = admin.RemoveNode(ctx, 1)
	if !errors.Is(err, rapidmq.ErrInvalidArgument) || !strings.Contains(err.Error(), "last voter") {
		t.Fatalf("remove the last voter: want INVALID_ARGUMENT, got %v", err)
	}
	if after, err := admin.ClusterStatus(ctx); err != nil || len(after.Nodes) != 1 || after.Nodes[0].Role != "voter" {
		t.Fatalf("after the refusal: %+v %v", after, err)
	}

	// The only voter leads every partition it hosts and has no other node to ask.
	if r, err := admin.RebalanceLeaders(ctx); err != nil || r.Transfers != 0 || len(r.Unreachable) != 0 {
		t.Fatalf("rebalance leaders: %+v %v", r, err)
	}
}

func TestASingleNodeBrokerSaysItIsNotInClusterMode(t *testing.T) {
	_, client := setup(t)
	admin := client.Admin()
	ctx := ctxT(t)

	status, err := admin.ClusterStatus(ctx)
	if err != nil || status.Mode != "single-node" || status.LeaderID != nil || status.Membership != "" || len(status.Nodes) != 0 {
		t.Fatalf("status: %+v %v", status, err)
	}
	if _, err := admin.RemoveNode(ctx, 1); code(err) != rapidmq.CodeInvalidArgument {
		t.Fatalf("remove-node in single-node mode: %v", err)
	}
	if _, err := admin.AddNode(ctx, 2, "127.0.0.1:7002"); code(err) != rapidmq.CodeInvalidArgument {
		t.Fatalf("add-node in single-node mode: %v", err)
	}
	if r, err := admin.RebalanceLeaders(ctx); err != nil || r.Transfers != 0 || len(r.Unreachable) != 0 {
		t.Fatalf("rebalance leaders in single-node mode: %+v %v", r, err)
	}
}
