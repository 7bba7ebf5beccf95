"""Create, read, list (label and field selectors), replace and delete with
the official Python client: ConfigMaps, a Service, a ReplicationController,
a ServiceAccount, a ResourceQuota and a Namespace, deserialized into the
client's models (which refuse objects that lack required fields); and the
errors a Python program switches on: 404, 409 and 422 naming the invalid
field; a dry-run create; a delete with a DeleteOptions body.

Usage: crud.py KUBECONFIG
"""

from kubernetes import client

from common import body_of, check, connect, expect_status, meta, names, ok

v1 = connect()
ns = "py-crud"

version = client.VersionApi().get_code()
check(version.git_version.startswith("v"), "GET /version deserializes into VersionInfo", version)

check(
    {"default", "kube-system"} <= set(names(v1.list_namespace().items)),
    "the namespace list has default and kube-system",
    names(v1.list_namespace().items),
)
created = v1.create_namespace(client.V1Namespace(metadata=meta(ns)))
check(created.metadata.name == ns and created.metadata.uid, "create a namespace", created.metadata)
check(v1.read_namespace(ns).status.phase == "Active", "the new namespace is Active", v1.read_namespace(ns).status)

# ConfigMaps: create three, two of them in tier front.
for name, tier in [("cm1", "front"), ("cm2", "back"), ("cm3", "front")]:
    made = v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta(name, labels={"tier": tier}), data={"k": name}))
    check(made.metadata.resource_version and made.metadata.uid and made.metadata.creation_timestamp, f"create ConfigMap {name}", made.metadata)
cm1 = v1.read_namespaced_config_map("cm1", ns)
check(cm1.data == {"k": "cm1"} and cm1.metadata.labels == {"tier": "front"}, "read back cm1", cm1)
check(cm1.kind == "ConfigMap" and cm1.api_version == "v1", "a read object carries kind and apiVersion", (cm1.kind, cm1.api_version))

everything = v1.list_namespaced_config_map(ns)
check({"cm1", "cm2", "cm3"} <= set(names(everything.items)), "list the namespace's ConfigMaps", names(everything.items))
check(everything.metadata.resource_version, "a list has a resourceVersion", everything.metadata)
front = v1.list_namespaced_config_map(ns, label_selector="tier=front")
check(names(front.items) == ["cm1", "cm3"], "label selector tier=front", names(front.items))
back = v1.list_namespaced_config_map(ns, label_selector="tier in (back)")
check(names(back.items) == ["cm2"], "set-based label selector tier in (back)", names(back.items))
by_name = v1.list_namespaced_config_map(ns, field_selector="metadata.name=cm2")
check(names(by_name.items) == ["cm2"], "field selector metadata.name=cm2", names(by_name.items))
not_named = v1.list_namespaced_config_map(ns, field_selector="metadata.name!=cm2", label_selector="tier")
check(names(not_named.items) == ["cm1", "cm3"], "field selector != with a label-exists selector", names(not_named.items))
across = v1.list_config_map_for_all_namespaces(label_selector="tier=front")
check(
    sorted((c.metadata.namespace, c.metadata.name) for c in across.items) == [(ns, "cm1"), (ns, "cm3")],
    "list ConfigMaps across namespaces",
    [(c.metadata.namespace, c.metadata.name) for c in across.items],
)
check(v1.list_namespaced_config_map("default", label_selector="tier").items == [], "no ConfigMaps of ours in default")

# Replace: a read-modify-write bumps the resourceVersion; a stale one conflicts.
stale = cm1.metadata.resource_version
cm1.data["k"] = "one"
cm1.data["extra"] = "x"
replaced = v1.replace_namespaced_config_map("cm1", ns, cm1)
check(replaced.data == {"k": "one", "extra": "x"}, "replace cm1", replaced.data)
check(replaced.metadata.resource_version != stale, "a replace bumps the resourceVersion", replaced.metadata.resource_version)
check(replaced.metadata.uid == cm1.metadata.uid, "a replace keeps the uid", replaced.metadata.uid)
cm1.metadata.resource_version = stale
conflict = expect_status(409, "replace with a stale resourceVersion", v1.replace_namespaced_config_map, "cm1", ns, cm1)
check(conflict.get("reason") == "Conflict", "the stale replace's reason is Conflict", conflict)

# Errors Python programs switch on.
missing = expect_status(404, "read a missing ConfigMap", v1.read_namespaced_config_map, "nope", ns)
check(missing.get("reason") == "NotFound" and "nope" in missing.get("message", ""), "404 is NotFound naming the object", missing)
check(missing.get("details", {}).get("name") == "nope", "404 details name the object", missing.get("details"))
exists = expect_status(
    409, "create cm2 twice", v1.create_namespaced_config_map, ns, client.V1ConfigMap(metadata=meta("cm2"), data={"k": "again"})
)
check(exists.get("reason") == "AlreadyExists", "409 is AlreadyExists", exists)
bad_pod = client.V1Pod(metadata=meta("bad"), spec=client.V1PodSpec(containers=[client.V1Container(name="c")]))
invalid = expect_status(422, "create a pod whose container has no image", v1.create_namespaced_pod, ns, bad_pod)
check(invalid.get("reason") == "Invalid", "422 is Invalid", invalid)
fields = [c.get("field") for c in invalid.get("details", {}).get("causes", [])]
check("spec.containers[0].image" in fields, "422 causes name spec.containers[0].image", invalid.get("details"))
check("spec.containers[0].image" in invalid.get("message", ""), "422 message names the field", invalid.get("message"))
expect_status(404, "the invalid pod was not stored", v1.read_namespaced_pod, "bad", ns)

# A server-side dry run answers the object without storing it.
dry = v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta("dry"), data={"k": "v"}), dry_run="All")
check(dry.metadata.name == "dry" and dry.data == {"k": "v"}, "create with dry_run=All answers the object", dry)
expect_status(404, "the dry-run ConfigMap was not stored", v1.read_namespaced_config_map, "dry", ns)

# Delete.
gone = v1.delete_namespaced_config_map("cm1", ns)
ok(f"delete cm1 (answer: {type(gone).__name__})")
expect_status(404, "cm1 is gone", v1.read_namespaced_config_map, "cm1", ns)
check(names(v1.list_namespaced_config_map(ns, label_selector="tier=front").items) == ["cm3"], "the list no longer has cm1")
expect_status(404, "delete cm1 again", v1.delete_namespaced_config_map, "cm1", ns)
options = client.V1DeleteOptions(grace_period_seconds=0, propagation_policy="Background")
v1.delete_namespaced_config_map("cm3", ns, body=options)
expect_status(404, "delete cm3 with a DeleteOptions body", v1.read_namespaced_config_map, "cm3", ns)

# A Service: the ClusterIP is allocated, ports get their defaults.
svc = client.V1Service(
    metadata=meta("web", labels={"app": "web"}),
    spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(name="http", port=80, target_port=8080)]),
)
made = v1.create_namespaced_service(ns, svc)
check(made.spec.cluster_ip and made.spec.cluster_ip != "None", "a created Service has a ClusterIP", made.spec)
check(made.spec.type == "ClusterIP", "the Service type defaults to ClusterIP", made.spec.type)
port = made.spec.ports[0]
check((port.port, port.protocol, port.target_port) == (80, "TCP", 8080), "the Service port with protocol defaulted", port)
read = v1.read_namespaced_service("web", ns)
check(read.spec.cluster_ip == made.spec.cluster_ip and read.spec.selector == {"app": "web"}, "read the Service back", read.spec)
listed = v1.list_namespaced_service(ns, label_selector="app=web")
check(names(listed.items) == ["web"], "list Services by label", names(listed.items))
read.spec.ports[0].port = 81
replaced = v1.replace_namespaced_service("web", ns, read)
check(replaced.spec.ports[0].port == 81 and replaced.spec.cluster_ip == made.spec.cluster_ip, "replace the Service's port", replaced.spec)
replaced.spec.cluster_ip = "10.96.200.200"
for field in ("cluster_ips", "cluster_i_ps"):  # the name differs between client versions
    if hasattr(replaced.spec, field):
        setattr(replaced.spec, field, ["10.96.200.200"])
immutable = expect_status(422, "change a Service's ClusterIP", v1.replace_namespaced_service, "web", ns, replaced)
check("spec.clusterIP" in immutable.get("message", ""), "the 422 names spec.clusterIP", immutable)
# Kubernetes answers the deletion of a Service with the Service (its storage
# has ReturnDeletedObject), and the client deserializes it as V1Service.
deleted = v1.delete_namespaced_service("web", ns)
check(isinstance(deleted, client.V1Service) and deleted.metadata.name == "web", "deleting a Service answers the Service", deleted)
expect_status(404, "the Service is gone", v1.read_namespaced_service, "web", ns)

# ServiceAccounts and ResourceQuotas too answer their deletion with the object.
v1.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=meta("robot")))
check("robot" in names(v1.list_namespaced_service_account(ns).items), "create a ServiceAccount")
deleted = v1.delete_namespaced_service_account("robot", ns)
check(isinstance(deleted, client.V1ServiceAccount) and deleted.metadata.name == "robot", "deleting a ServiceAccount answers it", deleted)
quota = client.V1ResourceQuota(metadata=meta("q"), spec=client.V1ResourceQuotaSpec(hard={"pods": "10"}))
check(v1.create_namespaced_resource_quota(ns, quota).spec.hard == {"pods": "10"}, "create a ResourceQuota")
deleted = v1.delete_namespaced_resource_quota("q", ns)
check(isinstance(deleted, client.V1ResourceQuota) and deleted.metadata.name == "q", "deleting a ResourceQuota answers it", deleted)

# A ReplicationController (no controller-manager runs: its status stays empty,
# and the model must still deserialize: status.replicas is required).
rc = client.V1ReplicationController(
    metadata=meta("rc1", labels={"app": "web"}),
    spec=client.V1ReplicationControllerSpec(
        replicas=2,
        selector={"app": "web"},
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="berth/busybox:1", ports=[client.V1ContainerPort(container_port=80)])]),
        ),
    ),
)
made = v1.create_namespaced_replication_controller(ns, rc)
check(made.spec.replicas == 2 and made.spec.selector == {"app": "web"}, "create a ReplicationController", made.spec)
read = v1.read_namespaced_replication_controller("rc1", ns)
container = read.spec.template.spec.containers[0]
check((container.name, container.image, container.ports[0].container_port) == ("web", "berth/busybox:1", 80), "read the RC's template", container)
check(container.image_pull_policy == "IfNotPresent", "the template's imagePullPolicy is defaulted", container.image_pull_policy)
check(read.spec.template.spec.restart_policy == "Always", "the template's restartPolicy is defaulted", read.spec.template.spec.restart_policy)
everywhere = v1.list_replication_controller_for_all_namespaces()
check((ns, "rc1") in [(r.metadata.namespace, r.metadata.name) for r in everywhere.items], "list RCs across namespaces", everywhere)
read.spec.replicas = 0
replaced = v1.replace_namespaced_replication_controller("rc1", ns, read)
check(replaced.spec.replicas == 0, "replace the RC with 0 replicas (an explicit zero comes back)", replaced.spec)
v1.delete_namespaced_replication_controller("rc1", ns, propagation_policy="Background", grace_period_seconds=0)
expect_status(404, "the RC is gone", v1.read_namespaced_replication_controller, "rc1", ns)

# Pods across all namespaces deserialize (whatever is there).
v1.list_pod_for_all_namespaces(limit=500)
ok("list pods across all namespaces with limit=500")

# A namespace is deleted: gone, or Terminating until its contents are.
v1.delete_namespace(ns)
try:
    phase = v1.read_namespace(ns).status.phase
    check(phase == "Terminating", "a deleted namespace is Terminating", phase)
except client.ApiException as error:
    check(error.status == 404, "a deleted namespace is gone", body_of(error))
expect_status(404, "delete a namespace that never existed", v1.delete_namespace, "py-never")
print("crud: all checks passed")
