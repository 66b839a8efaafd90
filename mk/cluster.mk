# `make run-cluster`: three cluster-mode brokers on 127.0.0.1 (docs/configuration.md#cluster),
# data in ./data/node-N. Node N serves gRPC on 75N0 and HTTP on 75N1, and talks raft on 700N.
# Ctrl-C stops all three.
CLUSTER_PEERS ?= 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003

.PHONY: run-cluster
run-cluster: release
	@bash -c 'pids=(); trap "kill \$${pids[*]} 2>/dev/null; wait" INT TERM EXIT; \
	for n in 1 2 3; do \
	  $(RELEASE_BIN) serve --node-id $$n --peers $(CLUSTER_PEERS) --data-dir ./data/node-$$n \
	    --grpc-listen 127.0.0.1:75$${n}0 --http-listen 127.0.0.1:75$${n}1 & pids+=($$!); \
	done; \
	echo "three nodes: rapidmq --server 127.0.0.1:7510 cluster status"; wait'
