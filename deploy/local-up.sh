#!/usr/bin/env bash
# Brings up a local Berth cluster on this host: for now the apiserver on a
# sled store in ./.berth/data (later issues add the other daemons here).
# Ctrl-C stops it cleanly; running it again reuses the data.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
state="${BERTH_STATE_DIR:-$root/.berth}"
listen="${BERTH_LISTEN:-127.0.0.1:6443}"
mkdir -p "$state/data" "$state/logs"

echo "building (release)..."
cargo build --release --locked -p berth-apiserver -p berthctl
bin="$root/target/release"

"$bin/berth-apiserver" --listen "$listen" --data-dir "$state/data" >>"$state/logs/apiserver.log" 2>&1 &
apiserver=$!
stop() {
  echo "stopping..."
  kill -TERM "$apiserver" 2>/dev/null || true
  wait "$apiserver" 2>/dev/null || true
  echo "stopped; data kept in $state/data"
}
trap stop INT TERM EXIT

server="http://$listen"
for _ in $(seq 1 100); do
  if "$bin/berthctl" --server "$server" get namespaces >/dev/null 2>&1; then break; fi
  if ! kill -0 "$apiserver" 2>/dev/null; then
    echo "error: berth-apiserver exited; see $state/logs/apiserver.log" >&2
    tail -n 20 "$state/logs/apiserver.log" >&2
    exit 1
  fi
  sleep 0.1
done

cat <<TXT
Berth is up: apiserver at $server, data in $state/data, logs in $state/logs.

Try:
  export PATH=$bin:\$PATH
  berthctl get namespaces
  berthctl apply -f ../shared/conformance/manifests/web__guestbook-go__guestbook-controller.yaml
  berthctl get rc -o wide
  berthctl get rc guestbook -o yaml

Ctrl-C stops the cluster.
TXT
wait "$apiserver"
