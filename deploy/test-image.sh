#!/usr/bin/env bash
# Builds Berth's test images from Debian's busybox-static with `docker import`
# (no registry is reachable), giving sh, httpd, nc, wget and sleep in pods:
#
#   berth/busybox:1   the image tests and the local launcher run in pods
#   berth/pause:1     the kubelet's pod infrastructure ("pause") container
#
# Both carry a pinned tag, so pods default to imagePullPolicy IfNotPresent and
# never reach for a registry. Idempotent: images that exist are kept unless
# --force is given. Needs /bin/busybox from the busybox-static package
# (`apt-get install -y busybox-static`), or BUSYBOX=/path/to/static/busybox.
set -euo pipefail

IMAGE="${BERTH_TEST_IMAGE:-berth/busybox:1}"
PAUSE="${BERTH_PAUSE_IMAGE:-berth/pause:1}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

have() { docker image inspect "$1" >/dev/null 2>&1; }
if [ "$FORCE" = 0 ] && have "$IMAGE" && have "$PAUSE"; then
  exit 0
fi

BUSYBOX="${BUSYBOX:-}"
if [ -z "$BUSYBOX" ]; then
  for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then BUSYBOX="$b"; break; fi
  done
fi
if [ -z "$BUSYBOX" ] || [ ! -x "$BUSYBOX" ]; then
  echo "error: no static busybox found: apt-get install -y busybox-static (or set BUSYBOX=)" >&2
  exit 1
fi

# Several test binaries may run this at once: one build at a time.
LOCK="${TMPDIR:-/tmp}/berth-test-image.lock"
exec 9>"$LOCK"
flock 9
if [ "$FORCE" = 0 ] && have "$IMAGE" && have "$PAUSE"; then
  exit 0
fi

ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,var/www,root,home,proc,sys,dev,run}
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] && continue
  ln -sf /bin/busybox "$ROOT/bin/$applet"
done
cat >"$ROOT/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat >"$ROOT/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G
echo "berth test image (busybox)" >"$ROOT/var/www/index.html"

TAR="$ROOT.tar"
tar -C "$ROOT" --numeric-owner --owner=0 --group=0 -cf "$TAR" .
trap 'rm -rf "$ROOT" "$TAR"' EXIT
ENV_PATH='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
docker import -c "$ENV_PATH" -c 'CMD ["/bin/sh"]' -m "berth test image" "$TAR" "$IMAGE" >/dev/null
# The pause container only holds the pod's namespaces; it sleeps until killed.
docker import -c "$ENV_PATH" -c 'CMD ["/bin/sleep", "2147483647"]' -m "berth pause image" "$TAR" "$PAUSE" >/dev/null
echo "built $IMAGE and $PAUSE from $BUSYBOX"
