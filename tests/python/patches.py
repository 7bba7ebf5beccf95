"""Each patch type as the official Python client sends it: a dict body
(strategic merge patch, which merges lists of containers by name), a list
body (JSON patch), `_content_type='application/merge-patch+json'` (merge
patch, which replaces lists); the RC's scale subresource (read, patch) and
its status subresource.

Usage: patches.py KUBECONFIG
"""

from kubernetes import client

from common import check, connect, expect_status, meta, ok

v1 = connect()
ns = "py-patch"
v1.create_namespace(client.V1Namespace(metadata=meta(ns)))

v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("cfg", labels={"x": "1"}), data={"a": "1", "b": "2"}))

# A dict body: strategic merge patch (null deletes a key).
smp = v1.patch_namespaced_config_map("cfg", ns, {"data": {"b": None, "c": "3"}, "metadata": {"labels": {"y": "2"}}})
check(smp.data == {"a": "1", "c": "3"}, "strategic merge patch (dict body) merges data and deletes b", smp.data)
check(smp.metadata.labels == {"x": "1", "y": "2"}, "strategic merge patch merges labels", smp.metadata.labels)

# A list body: JSON patch.
ops = [
    {"op": "test", "path": "/data/a", "value": "1"},
    {"op": "replace", "path": "/data/a", "value": "10"},
    {"op": "add", "path": "/data/d", "value": "4"},
    {"op": "remove", "path": "/metadata/labels/x"},
]
jp = v1.patch_namespaced_config_map("cfg", ns, ops)
check(jp.data == {"a": "10", "c": "3", "d": "4"}, "JSON patch (list body) replaces and adds", jp.data)
check(jp.metadata.labels == {"y": "2"}, "JSON patch removes a label", jp.metadata.labels)
failed = expect_status(
    422, "a JSON patch whose test op fails", v1.patch_namespaced_config_map, "cfg", ns, [{"op": "test", "path": "/data/a", "value": "1"}]
)
check(v1.read_namespaced_config_map("cfg", ns).data["a"] == "10", "a failed JSON patch changes nothing", failed)
expect_status(404, "patch a missing ConfigMap", v1.patch_namespaced_config_map, "nope", ns, {"data": {"a": "1"}})

# Merge patch: the client is told the content type (every client from v31 on takes _content_type).
mp = v1.patch_namespaced_config_map("cfg", ns, {"data": {"c": None, "e": "5"}}, _content_type="application/merge-patch+json")
check(mp.data == {"a": "10", "d": "4", "e": "5"}, "merge patch (application/merge-patch+json)", mp.data)

# A ReplicationController: strategic merge merges containers by name, merge patch replaces the list.
template = client.V1PodTemplateSpec(
    metadata=client.V1ObjectMeta(labels={"app": "web"}),
    spec=client.V1PodSpec(
        containers=[
            client.V1Container(name="web", image="berth/busybox:1", command=["sleep", "3600"]),
            client.V1Container(name="side", image="berth/busybox:1", command=["sleep", "3600"]),
        ]
    ),
)
rc = client.V1ReplicationController(
    metadata=meta("web"), spec=client.V1ReplicationControllerSpec(replicas=1, selector={"app": "web"}, template=template)
)
v1.create_namespaced_replication_controller(ns, rc)
patched = v1.patch_namespaced_replication_controller("web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "berth/busybox:2"}]}}}})
containers = {c.name: c for c in patched.spec.template.spec.containers}
check(sorted(containers) == ["side", "web"], "strategic merge keeps the other container", sorted(containers))
check(containers["web"].image == "berth/busybox:2", "strategic merge changes web's image", containers["web"].image)
check(containers["web"].command == ["sleep", "3600"], "strategic merge keeps web's command", containers["web"].command)
replaced = v1.patch_namespaced_replication_controller(
    "web",
    ns,
    {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "berth/busybox:1"}]}}}},
    _content_type="application/merge-patch+json",
)
check([c.name for c in replaced.spec.template.spec.containers] == ["only"], "merge patch replaces the container list", replaced.spec.template.spec)

# The scale subresource.
scale = v1.read_namespaced_replication_controller_scale("web", ns)
check(scale.kind == "Scale" and scale.api_version == "autoscaling/v1", "read RC scale: an autoscaling/v1 Scale", (scale.kind, scale.api_version))
check(scale.spec.replicas == 1 and scale.metadata.name == "web", "the Scale has spec.replicas 1", scale)
check(scale.status is not None and scale.status.replicas == 0, "the Scale's status.replicas (no controller: 0)", scale.status)
scaled = v1.patch_namespaced_replication_controller_scale("web", ns, {"spec": {"replicas": 3}})
check(scaled.spec.replicas == 3, "patch the RC's scale to 3", scaled.spec)
check(v1.read_namespaced_replication_controller("web", ns).spec.replicas == 3, "the RC has 3 replicas")
scaled.spec.replicas = 2
put = v1.replace_namespaced_replication_controller_scale("web", ns, scaled)
check(put.spec.replicas == 2 and v1.read_namespaced_replication_controller("web", ns).spec.replicas == 2, "replace the RC's scale with 2", put.spec)
expect_status(404, "the scale of a missing RC", v1.read_namespaced_replication_controller_scale, "nope", ns)

# The status subresource deserializes (status.replicas is required by the model).
status = v1.read_namespaced_replication_controller_status("web", ns)
check(status.status is not None and status.status.replicas == 0, "read the RC's status: replicas 0", status.status)
check(status.spec.replicas == 2, "the status read carries the spec too", status.spec)

v1.delete_namespace(ns)
ok("delete the namespace")
print("patches: all checks passed")
