package rapidmq_test

// Cluster administration through the core: a one-node cluster (serve --node-id 1 --peers
// 1=127.0.0.1:PORT) and a broker in single-node mode; partition placement (replicas, leaders,
// the replication factor) on one node and on three, and replica moves on three; C24
// cluster-failover with three nodes.

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// freePort is a free port for a cluster listener (bound, then released for the broker to take).
func freePort(t *testing.T) int {
	t.Helper()
	l := clusterListeners(t, 1)[0]
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
	// The id the founding node derived from its peers: 128 bits in hex.
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(status.ClusterID) {
		t.Fatalf("cluster id: %q", status.ClusterID)
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
	if err != nil || status.Mode != "single-node" || status.LeaderID != nil || status.Membership != "" || len(status.Nodes) != 0 || status.MovingPartitions != 0 || status.ClusterID != "" {
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
	if moves, err := admin.RebalanceReplicas(ctx, nil, false); code(err) != rapidmq.CodeInvalidArgument {
		t.Fatalf("rebalance replicas in single-node mode: %+v %v", moves, err)
	}
}

func TestASingleNodeBrokerKeepsOneCopyAndNamesNoReplicasOrLeader(t *testing.T) {
	_, client := setup(t)
	admin := client.Admin()
	ctx := ctxT(t)

	created, err := admin.CreateTopic(ctx, "one-copy", rapidmq.TopicConfig{Partitions: 2, ReplicationFactor: rapidmq.Ptr(uint32(1))})
	if err != nil {
		t.Fatalf("create with replication factor 1: %v", err)
	}
	described, err := admin.DescribeTopic(ctx, "one-copy")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	// A single-node broker places nothing: no factor, no replicas, no partition group leader.
	for _, info := range []rapidmq.TopicInfo{created, described} {
		if info.Config.ReplicationFactor != nil || len(info.Partitions) != 2 {
			t.Fatalf("topic: %+v", info)
		}
		for _, p := range info.Partitions {
			if p.Replicas == nil || len(p.Replicas) != 0 || p.Leader != nil {
				t.Fatalf("partition %d: replicas %v, leader %v", p.Partition, p.Replicas, p.Leader)
			}
		}
	}

	for rf, says := range map[uint32]string{2: "replication needs cluster mode", 0: "must be at least 1"} {
		_, err := admin.CreateTopic(ctx, fmt.Sprintf("copies-%d", rf), rapidmq.TopicConfig{Partitions: 1, ReplicationFactor: rapidmq.Ptr(rf)})
		var e *rapidmq.Error
		if !errors.Is(err, rapidmq.ErrInvalidTopicConfig) || !errors.As(err, &e) || e.Retriable || !strings.Contains(e.Message, says) {
			t.Fatalf("replication factor %d: want INVALID_TOPIC_CONFIG (%q), got %v", rf, says, err)
		}
	}
	if topics, err := admin.ListTopics(ctx); err != nil || len(topics) != 1 || topics[0].Name != "one-copy" {
		t.Fatalf("topics: %+v %v", topics, err)
	}
}

// waitForThreeVoters waits until the node behind admin knows a metadata leader and three
// registered voters.
func waitForThreeVoters(t *testing.T, admin *rapidmq.Admin) {
	t.Helper()
	ctx := ctxT(t)
	eventually(t, "a leader and three registered voters", func() bool {
		s, err := admin.ClusterStatus(ctx)
		if err != nil || s.LeaderID == nil || len(s.Nodes) != 3 {
			return false
		}
		for _, n := range s.Nodes {
			if n.Role != "voter" || n.GRPCAddr == "" {
				return false
			}
		}
		return true
	})
}

func TestATopicReplicatedThreeTimesDescribesItsReplicasAndLeadersAndHasNothingToMove(t *testing.T) {
	nodes := startCluster(t, 3)
	admin := connect(t, nodes[0]).Admin()
	ctx := ctxT(t)
	waitForThreeVoters(t, admin)

	created, err := admin.CreateTopic(ctx, "placed", rapidmq.TopicConfig{Partitions: 3, ReplicationFactor: rapidmq.Ptr(uint32(3))})
	if err != nil || created.Config.ReplicationFactor == nil || *created.Config.ReplicationFactor != 3 {
		t.Fatalf("create with replication factor 3: %+v %v", created.Config, err)
	}
	var info rapidmq.TopicInfo
	eventually(t, "a leader of every partition", func() bool {
		info, err = admin.DescribeTopic(ctx, "placed")
		return err == nil && !slices.ContainsFunc(info.Partitions, func(p rapidmq.PartitionInfo) bool { return p.Leader == nil })
	})
	if info.Config.ReplicationFactor == nil || *info.Config.ReplicationFactor != 3 {
		t.Fatalf("described config: %+v", info.Config)
	}
	var preferred []uint64
	for _, p := range info.Partitions {
		if !slices.Equal(slices.Sorted(slices.Values(p.Replicas)), []uint64{1, 2, 3}) || !slices.Contains(p.Replicas, *p.Leader) {
			t.Fatalf("partition %d: replicas %v, leader %d", p.Partition, p.Replicas, *p.Leader)
		}
		preferred = append(preferred, p.Replicas[0])
	}
	// Each partition's preferred leader (its first replica) is a different node.
	if slices.Sort(preferred); !slices.Equal(preferred, []uint64{1, 2, 3}) {
		t.Fatalf("preferred leaders: %v", preferred)
	}
	topics, err := admin.ListTopics(ctx)
	if err != nil || len(topics) != 1 || len(topics[0].Partitions) != 3 {
		t.Fatalf("topics: %+v %v", topics, err)
	}
	for i, p := range topics[0].Partitions {
		if !slices.Equal(p.Replicas, info.Partitions[i].Replicas) {
			t.Fatalf("listed partition %d: replicas %v, described %v", i, p.Replicas, info.Partitions[i].Replicas)
		}
	}

	_, err = admin.CreateTopic(ctx, "too-many-copies", rapidmq.TopicConfig{Partitions: 1, ReplicationFactor: rapidmq.Ptr(uint32(4))})
	if !errors.Is(err, rapidmq.ErrInvalidTopicConfig) || !strings.Contains(err.Error(), "more than the cluster's 3 voting nodes") {
		t.Fatalf("replication factor 4 on three nodes: want INVALID_TOPIC_CONFIG, got %v", err)
	}

	// Every node holds a replica of each partition and leads one: nothing to move, nothing
	// moving; and no node 9 to move replicas off.
	if moves, err := admin.RebalanceReplicas(ctx, nil, true); err != nil || moves == nil || len(moves) != 0 {
		t.Fatalf("rebalance replicas (dry run): %+v %v", moves, err)
	}
	if status, err := admin.ClusterStatus(ctx); err != nil || status.MovingPartitions != 0 {
		t.Fatalf("moving partitions: %+v %v", status, err)
	}
	_, err = admin.RebalanceReplicas(ctx, []uint64{9}, false)
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrNodeNotFound) || !errors.As(err, &e) || e.Code != 5006 {
		t.Fatalf("rebalance replicas off node 9: want NODE_NOT_FOUND (5006), got %v", err)
	}
}

const (
	failoverMessages = 300
	failoverKeys     = 10
	// failoverWindow receipts are awaited together; the kill lands while one window is on the
	// wire.
	failoverWindow = 30
)

// C24 cluster-failover: three nodes, a topic of three partitions replicated three times
// (fsync), a client connected to node 1 only. A producer sends keyed messages (each
// partition's batches to its leader) and a queue consumer acks what it polls (one stream per
// node); a third of the way in, a node other than node 1 that leads a partition is killed
// (kill -9). Every send is appended (the core follows the new leader and retries
// idempotently), the consumer gets every message, and the log holds each once, each key's
// messages in send order.
func TestAProducerAndAQueueConsumerThroughNode1CarryOnWhenAPartitionLeaderIsKilled(t *testing.T) {
	nodes := startCluster(t, 3)
	client := connect(t, nodes[0])
	admin := client.Admin()
	ctx := ctxT(t)
	waitForThreeVoters(t, admin)
	const topic = "failover"
	cfg := rapidmq.TopicConfig{Partitions: 3, Durability: rapidmq.DurabilityFsync}
	if _, err := admin.CreateTopic(ctx, topic, cfg); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	partitions := func() []rapidmq.PartitionInfo {
		info, err := admin.DescribeTopic(ctx, topic)
		if err != nil {
			t.Fatalf("describe topic: %v", err)
		}
		return info.Partitions
	}
	eventually(t, "a leader of every partition on three replicas", func() bool {
		for _, p := range partitions() {
			if p.Leader == nil || len(p.Replicas) != 3 {
				return false
			}
		}
		return true
	})

	queueCfg := rapidmq.NewConsumerConfig(topic, "failover")
	queueCfg.Start = rapidmq.Earliest
	queueCfg.CommitInterval = 20 * time.Millisecond
	queue, err := client.SubscribeQueue(ctx, queueCfg)
	if err != nil {
		t.Fatalf("subscribe queue: %v", err)
	}
	t.Cleanup(func() { _ = queue.Close() })
	seen := make(map[int]bool)
	var consumeErr error
	var consuming sync.WaitGroup
	consuming.Add(1)
	go func() {
		defer consuming.Done()
		for len(seen) < failoverMessages {
			got, err := queue.Poll(ctx, 100, 30*time.Second)
			if err != nil || len(got) == 0 {
				consumeErr = fmt.Errorf("queue consumer stalled at %d: %v", len(seen), err)
				return
			}
			for _, m := range got {
				i, _ := strconv.Atoi(string(m.Value))
				seen[i] = true
				if err := queue.Ack(m); err != nil {
					consumeErr = fmt.Errorf("ack: %w", err)
					return
				}
			}
		}
		consumeErr = queue.Flush(ctx)
	}()

	producer := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	receipts := make(map[int]rapidmq.Delivery)
	var victim uint64
	for start := 0; start < failoverMessages; start += failoverWindow {
		var window []*rapidmq.SendFuture
		for i := start; i < min(start+failoverWindow, failoverMessages); i++ {
			m := rapidmq.Message{Key: []byte(fmt.Sprintf("k%d", i%failoverKeys)), Value: []byte(strconv.Itoa(i))}
			f, err := producer.SendAsync(ctx, m)
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			window = append(window, f)
		}
		if victim == 0 && start >= failoverMessages/3 {
			// A node other than node 1 that leads a partition, or node 2 if node 1 leads them
			// all: the scenario kills a node either way.
			victim = 2
			for _, p := range partitions() {
				if p.Leader != nil && *p.Leader != 1 {
					victim = *p.Leader
					break
				}
			}
			t.Logf("killing node %d", victim)
			nodes[victim-1].Kill()
		}
		for j, f := range window {
			d, err := f.Wait(ctx)
			if err != nil || d.Status != rapidmq.SendAppended {
				t.Fatalf("message %d: %+v %v", start+j, d, err)
			}
			receipts[start+j] = d
		}
	}
	if err := producer.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("producer stats: %+v", producer.Stats())

	consuming.Wait()
	if consumeErr != nil {
		t.Fatal(consumeErr)
	}
	for i := range failoverMessages {
		if !seen[i] {
			t.Fatalf("the queue consumer never got %d", i)
		}
	}
	t.Logf("queue consumer stats: %+v", queue.Stats())

	// Node 1 is a replica of every partition: once it has applied every acked append it serves
	// the whole log, and a retried batch appended twice would show as more messages.
	eventually(t, "node 1 to serve every acked message", func() bool {
		return len(readLog(t, client, topic)) >= failoverMessages
	})
	log := readLog(t, client, topic)
	type position struct {
		partition uint32
		offset    uint64
	}
	at := make(map[position]int)
	logged := make(map[int]bool)
	lastOfKey := make(map[string]int)
	for _, m := range log {
		i, err := strconv.Atoi(string(m.Value))
		if err != nil {
			t.Fatalf("value %q", m.Value)
		}
		if logged[i] {
			t.Fatalf("%d is in the log twice (again at %d:%d)", i, m.Partition, m.Offset)
		}
		logged[i] = true
		if before, ok := lastOfKey[string(m.Key)]; ok && before >= i {
			t.Fatalf("key %s: %d after %d", m.Key, i, before)
		}
		lastOfKey[string(m.Key)] = i
		at[position{m.Partition, m.Offset}] = i
	}
	if len(log) != failoverMessages {
		t.Fatalf("the log holds %d messages, want %d", len(log), failoverMessages)
	}
	for i, d := range receipts {
		if v, ok := at[position{d.Partition, d.Offset}]; !ok || v != i {
			t.Fatalf("receipt of %d names %d:%d", i, d.Partition, d.Offset)
		}
	}
}
