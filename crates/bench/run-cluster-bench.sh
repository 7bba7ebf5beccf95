#!/usr/bin/env bash
# The control-plane and node figures of the README, in one go, on a fresh
# release cluster in a temporary folder (stopped and removed at the end):
#
#   watch        1,000 watchers, 500 events
#   schedule     500 nodes / 3,000 pods (FULL=1: also 5,000 nodes / 30,000 pods)
#   converge     an RC of 1,000 replicas on 100 hollow nodes
#   pod-startup  100 pods on one real node (Docker, the test image)
#   dns          berth-dns from inside pods on that node, beside dnsmasq (needs
#                dnsmasq-base), through a berth-proxy in the userspace mode
#
# Each scenario runs REPEAT times (default 3); the JSON of each goes to
# OUT (default ./bench-results). Binaries from BIN (default target/release;
# build them with `cargo build --release --locked`).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${BIN:-$root/target/release}"
out="${OUT:-$PWD/bench-results}"
repeat="${REPEAT:-3}"
port="${API_PORT:-16443}"
server="http://127.0.0.1:$port"
tmp="$(mktemp -d)"
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$bin/berth-proxy" --cleanup --interface bbench-vips --chain-prefix BBENCH --table-name bbench >/dev/null 2>&1 || true
  ids="$(docker ps -aq --filter label=berth.io/node=bench-node)"
  # shellcheck disable=SC2086
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
bash "$root/deploy/test-image.sh" >/dev/null

"$bin/berth-apiserver" --listen "127.0.0.1:$port" --data-dir "$tmp/data" --service-cidr 10.99.0.0/24 2>"$tmp/apiserver.log" &
pids+=($!)
for _ in $(seq 1 100); do "$bin/berthctl" --server "$server" get ns >/dev/null 2>&1 && break; sleep 0.1; done
bench() { "$bin/berth-bench" "$1" --server "$server" --repeat "$repeat" --json "${@:2}" >"$out/$1${TAG:-}.json"; echo "$1: $out/$1${TAG:-}.json"; }

bench watch --watchers 1000 --events 500
# The scheduler scenario runs its own scheduler and needs no node controller.
bench schedule --nodes 500 --pods 3000
if [ "${FULL:-0}" = 1 ]; then TAG=-5000 bench schedule --nodes 5000 --pods 30000; fi

"$bin/berth-controller-manager" --server "$server" --health-listen 127.0.0.1:0 --leader-elect=false 2>"$tmp/cm.log" &
cm=$!
pids+=($cm)
"$bin/berth-scheduler" --server "$server" --health-listen 127.0.0.1:0 --leader-elect=false 2>"$tmp/scheduler.log" &
pids+=($!)
"$bin/berth-kubelet" --server "$server" --runtime fake --hollow-nodes 100 --node-name hollow --port 0 \
  --health-listen 127.0.0.1:0 --root-dir "$tmp/hollow" 2>"$tmp/hollow.log" &
hollow=$!
pids+=($hollow)
sleep 3
bench converge --replicas 1000 --nodes 100 --controller-manager-pid "$cm"
kill -TERM "$hollow"; wait "$hollow" 2>/dev/null || true

"$bin/berth-kubelet" --server "$server" --node-name bench-node --port 0 --health-listen 127.0.0.1:0 \
  --root-dir "$tmp/kubelet" 2>"$tmp/kubelet.log" &
kubelet=$!
pids+=($kubelet)
for _ in $(seq 1 100); do "$bin/berthctl" --server "$server" get node bench-node 2>/dev/null | grep -q " Ready " && break; sleep 0.2; done
bench pod-startup --node bench-node --pods 100 --kubelet-pid "$kubelet"

# The proxy with names of its own, so that a developer's cluster on this host keeps its VIPs.
"$bin/berth-proxy" --server "$server" --mode userspace --health-listen 127.0.0.1:0 --interface bbench-vips \
  --chain-prefix BBENCH --table-name bbench 2>"$tmp/proxy.log" &
pids+=($!)
bench dns --node bench-node
