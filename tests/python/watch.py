"""Watches with the official Python client's `watch.Watch().stream`: from a
list's resourceVersion with bookmarks and a timeout, seeing ADDED, MODIFIED
and DELETED made by another thread meanwhile, in order, deserialized into
V1ConfigMap; a BOOKMARK moving the watch's resource_version (the server runs
with a 1 s bookmark interval); the stream ending by itself at timeoutSeconds;
a watch without resourceVersion starting with the existing objects; and a
watch with a label selector seeing only matching objects.

Usage: watch.py KUBECONFIG
"""

import threading
import time

from kubernetes import client, watch

from common import check, connect, meta, ok

v1 = connect()
ns = "py-watch"
v1.create_namespace(client.V1Namespace(metadata=meta(ns)))
v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("before", labels={"w": "no"}), data={"v": "0"}))
start_rv = v1.list_namespaced_config_map(ns).metadata.resource_version
check(start_rv, "the list gives a resourceVersion to watch from", start_rv)


def writes():
    time.sleep(0.5)
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("a", labels={"w": "yes"}), data={"v": "1"}))
    v1.patch_namespaced_config_map("a", ns, {"data": {"v": "2"}})
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("b", labels={"w": "no"}), data={"v": "1"}))
    v1.delete_namespaced_config_map("a", ns)
    v1.delete_namespaced_config_map("b", ns)


writer = threading.Thread(target=writes)
w = watch.Watch()
events = []
began = time.monotonic()
writer.start()
# timeout_seconds: the server ends the stream, and Watch does not restart it.
for event in w.stream(v1.list_namespaced_config_map, ns, resource_version=start_rv, allow_watch_bookmarks=True, timeout_seconds=5):
    if event["type"] == "BOOKMARK":
        events.append(("BOOKMARK", event["raw_object"]["metadata"]["resourceVersion"], event["raw_object"]))
    else:
        obj = event["object"]
        check(isinstance(obj, client.V1ConfigMap), f"{event['type']} {obj.metadata.name} deserializes into V1ConfigMap", type(obj))
        events.append((event["type"], obj.metadata.name, obj.data, obj.metadata.resource_version))
writer.join()
ok(f"the watch ended by itself after {time.monotonic() - began:.1f}s (timeoutSeconds=5)")

changes = [(e[0], e[1], e[2]) for e in events if e[0] != "BOOKMARK"]
expected = [
    ("ADDED", "a", {"v": "1"}),
    ("MODIFIED", "a", {"v": "2"}),
    ("ADDED", "b", {"v": "1"}),
    ("DELETED", "a", {"v": "2"}),
    ("DELETED", "b", {"v": "1"}),
]
check(changes == expected, "the watch saw exactly the writes made after its resourceVersion, in order", changes)
versions = [int(e[3]) for e in events if e[0] != "BOOKMARK"]
check(versions == sorted(versions) and len(set(versions)) == len(versions), "event resourceVersions increase", versions)
check(versions[0] > int(start_rv), "the first event is newer than the list", (start_rv, versions))
bookmarks = [e for e in events if e[0] == "BOOKMARK"]
check(bookmarks, "a BOOKMARK came within 5 s (bookmark interval 1 s)", events)
bookmark = bookmarks[-1][2]
check(bookmark.get("kind") == "ConfigMap" and bookmark.get("apiVersion") == "v1", "a BOOKMARK carries kind and apiVersion", bookmark)
check(int(bookmarks[-1][1]) >= versions[-1], "the last BOOKMARK is at least the last event's revision", (bookmarks[-1][1], versions))
if events[-1][0] == "BOOKMARK":
    check(w.resource_version == events[-1][1], "the BOOKMARK moved Watch.resource_version", w.resource_version)

# Without resourceVersion: the existing objects first, as ADDED.
initial = []
for event in watch.Watch().stream(v1.list_namespaced_config_map, ns, timeout_seconds=1):
    initial.append((event["type"], event["object"].metadata.name))
check(("ADDED", "before") in initial, "a watch without resourceVersion starts with ADDED for existing objects", initial)

# A label selector: only matching objects' events.
def labelled_writes():
    time.sleep(0.5)
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("c", labels={"w": "yes"})))
    v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("d", labels={"w": "no"})))
    v1.delete_namespaced_config_map("c", ns)


rv = v1.list_namespaced_config_map(ns).metadata.resource_version
writer = threading.Thread(target=labelled_writes)
writer.start()
selected = []
for event in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=rv, label_selector="w=yes", timeout_seconds=3):
    selected.append((event["type"], event["object"].metadata.name))
writer.join()
check(selected == [("ADDED", "c"), ("DELETED", "c")], "a watch with labelSelector w=yes sees only c", selected)

v1.delete_namespace(ns)
print("watch: all checks passed")
