#!/usr/bin/env bash
# Runs the `api` benchmark on a fresh berth-apiserver and a fresh etcd:
# starts both on loopback in a temporary directory, runs
#   berth-bench api --server ... --etcd ... --pid ... --etcd-pid ... --repeat 3 --json
# (the figures the README quotes are the medians it prints), then stops both
# and removes the directory. Extra arguments go to berth-bench, e.g.
#   crates/bench/run-api-bench.sh --objects 5000
#   crates/bench/run-api-bench.sh --rss-pods 100000   # memory while holding 100k pods
#   crates/bench/run-api-bench.sh --rest               # the same workload over REST/JSON too
#
# Environment: API_PORT (16443), ETCD_PORT (12379), ETCD_PEER_PORT (12380),
# REPEAT (3), ETCD (etcd binary, from Debian's etcd-server package),
# NO_BUILD=1 to use the binaries already in target/release, TABLE=1 to print
# the table (medians with min and max) instead of JSON.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$ROOT/target/release
API_PORT=${API_PORT:-16443}
ETCD_PORT=${ETCD_PORT:-12379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-12380}
REPEAT=${REPEAT:-3}
ETCD=${ETCD:-etcd}

command -v "$ETCD" >/dev/null || { echo "run-api-bench: no etcd binary (apt-get install -y etcd-server)" >&2; exit 1; }
if [[ -z "${NO_BUILD:-}" ]]; then
    (cd "$ROOT" && cargo build --release -p berth-apiserver -p berth-bench >&2)
fi

WORK=$(mktemp -d /tmp/berth-api-bench.XXXXXX)
API_PID=
ETCD_PID=
cleanup() {
    # only the two processes this script started
    for pid in $API_PID $ETCD_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $API_PID $ETCD_PID; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for port in "$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT"; do
    if port_in_use "$port"; then
        echo "run-api-bench: 127.0.0.1:$port is already in use; choose other ports (API_PORT, ETCD_PORT, ETCD_PEER_PORT)" >&2
        exit 1
    fi
done

# Waits until process $2 accepts connections on 127.0.0.1:$1 (at most 10 s).
wait_port() {
    for _ in $(seq 100); do
        if port_in_use "$1"; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "run-api-bench: nothing listens on 127.0.0.1:$1 (its server exited or is slow); the logs:" >&2
    tail -n 20 "$WORK"/*.log >&2
    return 1
}

"$BIN/berth-apiserver" --listen "127.0.0.1:$API_PORT" --data-dir "$WORK/apiserver" >"$WORK/apiserver.log" 2>&1 &
API_PID=$!
"$ETCD" --name bench --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER_PORT" >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
wait_port "$API_PORT" "$API_PID"
wait_port "$ETCD_PORT" "$ETCD_PID"

format=(--json)
if [[ -n "${TABLE:-}" ]]; then
    format=()
fi
"$BIN/berth-bench" api \
    --server "http://127.0.0.1:$API_PORT" --etcd "http://127.0.0.1:$ETCD_PORT" \
    --pid "$API_PID" --etcd-pid "$ETCD_PID" --repeat "$REPEAT" ${format[@]+"${format[@]}"} "$@"
