#!/usr/bin/env bash
# Brings up a local Berth cluster on this host, or takes it down.
#
#   deploy/local-up.sh [up] [--nodes N] [--proxy-mode MODE] [--detach] [--insecure]
#   deploy/local-up.sh down
#
# `up` builds the binaries (release; BERTH_BIN_DIR=DIR uses binaries already
# built there instead), builds the test image, then starts every daemon:
# berth-apiserver on a sled store in $BERTH_STATE_DIR/data (default ./.berth),
# berth-controller-manager, berth-scheduler, N berth-kubelets (this host as
# node NAME, then NAME-2 ... NAME-N), one berth-proxy and berth-dns (behind
# the kube-dns Service, 10.96.0.10, that pods' resolv.conf names), with TLS and one
# certificate identity per daemon ($BERTH_STATE_DIR/pki; --insecure: the
# plaintext loopback mode instead). It waits until every node is Ready,
# makes berth-local berthctl's current context (in $BERTHCONFIG, default
# ~/.berth/config), writes the same context as a kubeconfig for kubectl to
# $BERTH_STATE_DIR/kubeconfig and prints what to try next. Logs: one file per
# daemon in $BERTH_STATE_DIR/logs. Without --detach, Ctrl-C stops everything;
# with it, `down` does. Stopping removes the pods' containers, the proxy's
# VIPs and rules, the berthctl context (with its cluster and user) and the
# kubeconfig; the store is kept, so a second `up` serves the same objects.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
state="${BERTH_STATE_DIR:-$root/.berth}"
case "$state" in /*) ;; *) state="$root/$state" ;; esac
listen="${BERTH_LISTEN:-127.0.0.1:6443}"
run="$state/run"
logs="$state/logs"

command="up"
nodes=1
proxy_mode="userspace"
detach=false
insecure=false
while [ $# -gt 0 ]; do
  case "$1" in
    up | down) command="$1" ;;
    --nodes) nodes="${2:?--nodes needs a number}"; shift ;;
    --nodes=*) nodes="${1#--nodes=}" ;;
    --proxy-mode) proxy_mode="${2:?--proxy-mode needs userspace, iptables, ipvs or nftables}"; shift ;;
    --proxy-mode=*) proxy_mode="${1#--proxy-mode=}" ;;
    --detach) detach=true ;;
    --insecure) insecure=true ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see $0 --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$nodes" in '' | *[!0-9]* | 0) echo "error: --nodes must be a positive number, not '$nodes'" >&2; exit 2 ;; esac

bin="${BERTH_BIN_DIR:-$root/target/release}"
node_base="$(hostname | tr '[:upper:]_' '[:lower:]-')"

# Removes from berthctl's config the entries `up` added (listed in
# $run/berthctl-entries as "context NAME", "cluster NAME", "user NAME"), so no
# context is left pointing at a stopped cluster, and the kubeconfig for kubectl.
forget_config() {
  rm -f "$state/kubeconfig"
  [ -e "$run/berthctl-entries" ] || return 0
  if [ ! -x "$bin/berthctl" ]; then
    echo "warning: $bin/berthctl is missing; remove the berth-local context from berthctl's config by hand" >&2
    return 0
  fi
  local what name
  while read -r what name; do
    "$bin/berthctl" config "delete-$what" "$name" >/dev/null 2>&1 ||
      echo "warning: could not remove $what $name from berthctl's config (already gone?)" >&2
  done <"$run/berthctl-entries"
  rm -f "$run/berthctl-entries"
  echo "removed the berth-local context from berthctl's config and $state/kubeconfig"
}

# Stops the daemons in reverse start order (SIGTERM, then SIGKILL after 15 s),
# then removes what they leave on the host: the proxy's VIPs and rules, the
# pods' containers of this cluster's nodes, and the config entries for it.
down() {
  [ -d "$run" ] || { echo "no cluster state in $state"; return 0; }
  echo "stopping..."
  local pidfile pid
  for pidfile in $(ls -1r "$run"/*.pid 2>/dev/null); do
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pidfile in "$run"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  if [ -e "$run/proxy-mode" ] && [ -x "$bin/berth-proxy" ]; then
    "$bin/berth-proxy" --mode "$(cat "$run/proxy-mode")" --cleanup >>"$logs/proxy.log" 2>&1 || true
  fi
  if [ -e "$run/nodes" ]; then
    local node ids
    while read -r node; do
      ids="$(docker ps -aq --filter "label=berth.io/node=$node")"
      # shellcheck disable=SC2086
      [ -z "$ids" ] || docker rm -f $ids >/dev/null
    done <"$run/nodes"
  fi
  forget_config
  echo "stopped; data kept in $state/data"
}

if [ "$command" = down ]; then
  down
  exit 0
fi

if [ -n "$(ls "$run"/*.pid 2>/dev/null)" ]; then
  for pidfile in "$run"/*.pid; do
    if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "error: a cluster from $state is already running ($(basename "$pidfile" .pid) has pid $(cat "$pidfile")); run '$0 down' first" >&2
      exit 1
    fi
  done
  rm -f "$run"/*.pid
fi
mkdir -p "$state/data" "$logs" "$run"

if [ -z "${BERTH_BIN_DIR:-}" ]; then
  echo "building (release)..."
  cargo build --release --locked -p berth-apiserver -p berthctl -p berth-scheduler \
    -p berth-controller-manager -p berth-kubelet -p berth-proxy -p berth-dns
fi
for b in berth-apiserver berth-controller-manager berth-scheduler berth-kubelet berth-proxy berth-dns berthctl; do
  [ -x "$bin/$b" ] || { echo "error: $bin/$b is missing (build it, or point BERTH_BIN_DIR at where it is)" >&2; exit 1; }
done
bash "$root/deploy/test-image.sh"

# start NAME ARGS...: runs a daemon in the background, its log in $logs/NAME.log.
start() {
  local name="$1"
  shift
  "$@" >>"$logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

# wait_until WHAT COMMAND...: polls COMMAND for up to 60 s, giving up early
# when a daemon has exited.
wait_until() {
  local what="$1" pidfile
  shift
  for _ in $(seq 1 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    for pidfile in "$run"/*.pid; do
      if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        local name
        name="$(basename "$pidfile" .pid)"
        echo "error: $name exited while waiting for $what; its log ($logs/$name.log) ends with:" >&2
        tail -n 20 "$logs/$name.log" >&2
        return 1
      fi
    done
    sleep 0.1
  done
  echo "error: timed out waiting for $what (logs in $logs)" >&2
  return 1
}

if [ "$detach" = false ]; then
  trap 'down; exit 0' INT TERM
fi
fail() { down; exit 1; }

node_names=()
for i in $(seq 1 "$nodes"); do
  if [ "$i" = 1 ]; then node_names+=("$node_base"); else node_names+=("$node_base-$i"); fi
done
printf '%s\n' "${node_names[@]}" >"$run/nodes"

# Security: by default the cluster runs with TLS and every daemon as its own
# identity, from a CA and certificates in $state/pki (made once, reused):
# the apiserver verifies client certificates, the components' default RBAC
# bindings give each what it needs, kubelets serve logs/exec/stats over TLS
# to the apiserver only, and berthctl is the admin (group system:masters).
# --insecure runs the plaintext loopback mode instead.
pki="$state/pki"
if [ "$insecure" = true ]; then
  server="http://$listen"
  api_tls=()
else
  server="https://$listen"
  host="${listen%:*}"
  "$bin/berthctl" certs --dir "$pki" --hosts "$host,localhost" --nodes "$(IFS=,; echo "${node_names[*]}")" >"$logs/certs.log" 2>&1 ||
    { echo "error: making certificates failed; see $logs/certs.log" >&2; tail -n 5 "$logs/certs.log" >&2; exit 1; }
  api_tls=(--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt"
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key"
    --kubelet-certificate-authority "$pki/ca.crt")
fi
# identity NAME: the client flags of the certificate NAME (nothing in --insecure mode).
identity() {
  [ "$insecure" = true ] && return 0
  echo "--ca-file" "$pki/ca.crt" "--client-certificate" "$pki/$1.crt" "--client-key" "$pki/$1.key"
}
admin=(--server "$server" $(identity admin))

start apiserver "$bin/berth-apiserver" --listen "$listen" --data-dir "$state/data" "${api_tls[@]}"
wait_until "the apiserver" "$bin/berthctl" "${admin[@]}" get namespaces || fail

# shellcheck disable=SC2046
start controller-manager "$bin/berth-controller-manager" --server "$server" $(identity kube-controller-manager)
# shellcheck disable=SC2046
start scheduler "$bin/berth-scheduler" --server "$server" $(identity kube-scheduler)
for i in $(seq 1 "$nodes"); do
  node="${node_names[$((i - 1))]}"
  if [ "$i" = 1 ]; then ports=(); else ports=(--port 0 --health-listen "127.0.0.1:$((20247 + i))"); fi
  kubelet_tls=()
  if [ "$insecure" = false ]; then
    kubelet_tls=(--tls-cert-file "$pki/node-$node.crt" --tls-private-key-file "$pki/node-$node.key" --client-ca-file "$pki/ca.crt")
  fi
  # shellcheck disable=SC2046
  start "kubelet-$i" "$bin/berth-kubelet" --server "$server" $(identity "node-$node") --node-name "$node" \
    --root-dir "$state/kubelet/$node" "${ports[@]}" "${kubelet_tls[@]}"
done
echo "$proxy_mode" >"$run/proxy-mode"
# shellcheck disable=SC2046
start proxy "$bin/berth-proxy" --server "$server" $(identity kube-proxy) --mode "$proxy_mode"

# Every node registered and Ready.
nodes_ready() {
  local table
  table="$("$bin/berthctl" "${admin[@]}" get nodes --no-headers)" || return 1
  while read -r node; do
    echo "$table" | awk -v n="$node" '$1 == n && $2 == "Ready" { found = 1 } END { exit !found }' || return 1
  done <"$run/nodes"
}
wait_until "$nodes node(s) to be Ready" nodes_ready || fail

# The cluster DNS. berth-dns listens on the cluster bridge's gateway (it
# exists once a kubelet is Ready): pods reach that address, and so does the
# proxy, whichever its mode. deploy/kube-dns.yaml puts the kube-dns Service
# (10.96.0.10, the address every pod's resolv.conf names) in front of it.
# Names outside the cluster are forwarded to this host's resolvers.
# (The address and port are those deploy/kube-dns.yaml's Endpoints name.)
dns_listen="172.30.0.1:10053"
dns_health="127.0.0.1:10054"
# shellcheck disable=SC2046
start dns "$bin/berth-dns" --server "$server" $(identity berth-dns) --listen "$dns_listen" \
  --health-listen "$dns_health" --resolv-conf /etc/resolv.conf
# http_ok HOST:PORT PATH: whether GET PATH answers 200.
http_ok() {
  local reply
  exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
  printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3
  reply="$(head -n 1 <&3)"
  exec 3<&-
  case "$reply" in *" 200 "*) return 0 ;; *) return 1 ;; esac
}
wait_until "berth-dns to sync" http_ok "$dns_health" /readyz || fail
"$bin/berthctl" "${admin[@]}" apply -f "$root/deploy/kube-dns.yaml" >"$logs/kube-dns.log" 2>&1 ||
  { echo "error: applying deploy/kube-dns.yaml failed; see $logs/kube-dns.log" >&2; fail; }

# berthctl's config ($BERTHCONFIG, default ~/.berth/config): a context for
# this cluster, made current, so that plain `berthctl get nodes` works.
# `down` removes them again (and the kubeconfig below), as listed in
# $run/berthctl-entries.
ctl=("$bin/berthctl")
if [ "$insecure" = true ]; then
  "${ctl[@]}" config set-cluster berth-local --server "$server" >/dev/null
  "${ctl[@]}" config set-context berth-local --cluster berth-local --user "" >/dev/null
  printf '%s\n' "context berth-local" "cluster berth-local" >"$run/berthctl-entries"
else
  "${ctl[@]}" config set-cluster berth-local --server "$server" --ca-file "$pki/ca.crt" >/dev/null
  "${ctl[@]}" config set-credentials berth-local-admin --client-certificate "$pki/admin.crt" --client-key "$pki/admin.key" >/dev/null
  "${ctl[@]}" config set-context berth-local --cluster berth-local --user berth-local-admin >/dev/null
  printf '%s\n' "context berth-local" "cluster berth-local" "user berth-local-admin" >"$run/berthctl-entries"
fi
"${ctl[@]}" config use-context berth-local >/dev/null
# The same context for kubectl and Kubernetes' client libraries, with the CA,
# certificate and key embedded; readable by its owner only.
kubeconfig="$state/kubeconfig"
"${ctl[@]}" --context berth-local config kubeconfig -o "$kubeconfig" || fail

cat <<TXT
Berth is up: apiserver at $server, $nodes node(s) Ready, cluster DNS at 10.96.0.10, data in $state/data, logs in $logs.
berthctl's current context is now berth-local (berthctl config get-contexts); kubectl's is in $kubeconfig.

Try:
  export PATH=$bin:\$PATH
  export KUBECONFIG=$kubeconfig
  berthctl get nodes
  berthctl apply -f examples/web.yaml
  berthctl get rc,pods -o wide
  berthctl scale rc web --replicas=5
  kubectl get pods

TXT
if [ "$detach" = true ]; then
  echo "Stop it with: $0 down"
  exit 0
fi
echo "Ctrl-C stops the cluster."
# Runs until Ctrl-C, or until a daemon dies.
while true; do
  for pidfile in "$run"/*.pid; do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "error: $(basename "$pidfile" .pid) exited; see $logs/$(basename "$pidfile" .pid).log" >&2
      fail
    fi
  done
  sleep 1
done
