"""A watch from a resourceVersion older than the server's watch history
(the server runs with a small --watch-history) with the official Python
client: the raw stream answers 200 and one ERROR event carrying a 410
Expired Status; `watch.Watch().stream` raises ApiException 410; and the
recovery a Python program does, a relist and a watch from the list's
resourceVersion, works.

Usage: watch_expired.py KUBECONFIG WRITES
(WRITES: how many writes push the first resourceVersion out of the history)
"""

import json
import sys
import threading
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from common import check, connect, meta, ok

v1 = connect()
writes = int(sys.argv[2])
ns = "py-expired"
v1.create_namespace(client.V1Namespace(metadata=meta(ns)))
v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("counter"), data={"n": "0"}))
old_rv = v1.list_namespaced_config_map(ns).metadata.resource_version
for n in range(1, writes + 1):
    v1.patch_namespaced_config_map("counter", ns, {"data": {"n": str(n)}})
ok(f"{writes} writes after resourceVersion {old_rv}")

# The raw API: HTTP 200, then a single ERROR event with a 410 Status, then the end.
try:
    resp = v1.list_namespaced_config_map(ns, watch=True, resource_version=old_rv, timeout_seconds=10, _preload_content=False)
except ApiException as error:
    raise AssertionError(
        f"the too-old watch was answered HTTP {error.status} {error.body!r}; Kubernetes answers 200 and one ERROR event with that Status"
    )
check(resp.status == 200, "the too-old watch is answered 200 (the error comes as an event)", resp.status)
lines = [line for line in resp.read().decode("utf-8").split("\n") if line.strip()]
resp.release_conn()
check(len(lines) == 1, "the too-old watch has exactly one event and ends", lines)
event = json.loads(lines[0])
check(event.get("type") == "ERROR", "the event is an ERROR", event)
status = event.get("object", {})
check(
    (status.get("kind"), status.get("apiVersion"), status.get("status"), status.get("code"), status.get("reason"))
    == ("Status", "v1", "Failure", 410, "Expired"),
    "the ERROR object is a 410 Expired Status",
    status,
)
check(old_rv in status.get("message", ""), "the message names the too-old resourceVersion", status.get("message"))

# watch.Watch: with timeout_seconds it does not retry, and raises 410.
try:
    seen = list(watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=old_rv, timeout_seconds=10))
    raise AssertionError(f"watching from {old_rv} did not fail; events: {seen!r}")
except ApiException as error:
    check(error.status == 410, "Watch().stream raises ApiException 410", (error.status, error.reason))
    check("Expired" in str(error.reason), "the exception's reason is Expired", error.reason)

# Recovery: relist, then watch from the list's resourceVersion.
listed = v1.list_namespaced_config_map(ns)
check([c.data["n"] for c in listed.items] == [str(writes)], "the relist has the current state", [c.data for c in listed.items])
new_rv = listed.metadata.resource_version
check(int(new_rv) > int(old_rv), "the relist's resourceVersion is newer", (old_rv, new_rv))


def one_more():
    time.sleep(0.5)
    v1.patch_namespaced_config_map("counter", ns, {"data": {"n": "last"}})


writer = threading.Thread(target=one_more)
writer.start()
w = watch.Watch()
events = []
for event in w.stream(v1.list_namespaced_config_map, ns, resource_version=new_rv, timeout_seconds=5):
    events.append((event["type"], event["object"].data))
    if event["object"].data == {"n": "last"}:
        w.stop()
writer.join()
check(events == [("MODIFIED", {"n": "last"})], "the watch from the relist's resourceVersion sees the next change only", events)

v1.delete_namespace(ns)
print("watch_expired: all checks passed")
