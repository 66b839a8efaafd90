# Free TCP ports on 127.0.0.1 for servers a script starts itself.
#
# Picked at random in 20000–31999, below Linux's ephemeral range (32768–60999 by default): a port
# found free there and then released can be taken by any outgoing connection before the server
# binds it, so a port from the ephemeral range is a race (the tests pick theirs the same way,
# cli/tests/common/cluster.rs `free_ports`).
#
#   source "$(dirname "$0")/lib/ports.sh"; port=$(free_port); ports=$(free_ports 3)

# Prints N distinct ports that were free when probed, space-separated.
free_ports() {
  python3 - "${1:-1}" <<'PY'
import random, socket, sys
wanted, found = int(sys.argv[1]), []
for _ in range(10000):
    if len(found) == wanted:
        break
    port = random.randint(20000, 31999)
    if port in found:
        continue
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
    found.append(port)
if len(found) < wanted:
    sys.exit("no free port in 20000-31999")
print(*found)
PY
}

# Prints one free port.
free_port() { free_ports 1; }
