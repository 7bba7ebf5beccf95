#!/usr/bin/env bash
# Installs Berth on this host for systemd: the binaries, the units and
# example EnvironmentFiles (kept if they exist already: your flags are never
# overwritten).
#
#   deploy/install.sh [--root DIR] [--bin-dir DIR] [--components LIST]
#
#   --components  which daemons: all (default), control-plane
#                 (apiserver,controller-manager,scheduler,dns) or node
#                 (kubelet,proxy), or a comma-separated list
#   --bin-dir     where the built binaries are (default target/release;
#                 run `cargo build --release --locked` first)
#   --root        install under DIR instead of / (packaging, tests)
#
# Then edit /etc/berth/*.env (see docs/deploy.md), and
#   systemctl enable --now berth-apiserver ...
set -euo pipefail
root_dir="/"
src="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="$src/target/release"
components="all"
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root_dir="${2:?--root needs a directory}"; shift ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; shift ;;
    --components) components="${2:?--components needs a list}"; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see $0 --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$components" in
  all) components="apiserver,controller-manager,scheduler,dns,kubelet,proxy" ;;
  control-plane) components="apiserver,controller-manager,scheduler,dns" ;;
  node) components="kubelet,proxy" ;;
esac

IFS=, read -r -a list <<<"$components"
for c in "${list[@]}"; do
  case "$c" in
    apiserver | controller-manager | scheduler | dns | kubelet | proxy) ;;
    *) echo "error: unknown component '$c' (apiserver, controller-manager, scheduler, dns, kubelet, proxy)" >&2; exit 2 ;;
  esac
  [ -x "$bin_dir/berth-$c" ] || { echo "error: $bin_dir/berth-$c is missing: build first (cargo build --release --locked) or give --bin-dir" >&2; exit 1; }
done

prefix="${root_dir%/}"
install -d "$prefix/usr/local/bin" "$prefix/etc/systemd/system" "$prefix/etc/berth/pki"
install -m 0755 "$bin_dir/berthctl" "$prefix/usr/local/bin/berthctl" 2>/dev/null ||
  { echo "error: $bin_dir/berthctl is missing: build first (cargo build --release --locked) or give --bin-dir" >&2; exit 1; }
for c in "${list[@]}"; do
  install -m 0755 "$bin_dir/berth-$c" "$prefix/usr/local/bin/berth-$c"
  install -m 0644 "$src/deploy/systemd/berth-$c.service" "$prefix/etc/systemd/system/berth-$c.service"
  if [ -e "$prefix/etc/berth/$c.env" ]; then
    echo "kept $prefix/etc/berth/$c.env"
  else
    install -m 0600 "$src/deploy/env/$c.env" "$prefix/etc/berth/$c.env"
    echo "wrote $prefix/etc/berth/$c.env (example: edit it)"
  fi
  echo "installed berth-$c"
done
if [ "$prefix" = "" ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
echo "next: edit $prefix/etc/berth/*.env, put the certificates in $prefix/etc/berth/pki, then systemctl enable --now berth-<component>"
