"""Logs and exec with the official Python client, through the apiserver to
a real kubelet: the Node and a running Pod deserialize into the client's
models (node info, addresses, conditions, container statuses are required
fields there); `read_namespaced_pod_log` whole, with tail_lines and
followed through `watch.Watch().stream`;
`kubernetes.stream.stream(connect_get_namespaced_pod_exec, ...)` reading
stdout, stderr and the exit code, and writing stdin (closed with the v5
protocol's close signal where the client offers v5).

Usage: logs_exec.py KUBECONFIG NODE IMAGE
"""

import sys

from kubernetes import client, watch
from kubernetes.stream import stream, ws_client

from common import check, connect, expect_status, meta, ok, wait_until

v1 = connect()
node_name, image = sys.argv[2], sys.argv[3]
ns = "default"
name = "py-shell"

node = v1.read_node(node_name)
info = node.status.node_info
check(info.kubelet_version and info.operating_system == "linux", "the Node's nodeInfo deserializes", info)
check(any(a.type == "InternalIP" for a in node.status.addresses), "the Node has an InternalIP", node.status.addresses)
check(
    any(c.type == "Ready" and c.status == "True" for c in node.status.conditions), "the Node is Ready", [(c.type, c.status) for c in node.status.conditions]
)
check(node_name in [n.metadata.name for n in v1.list_node().items], "list nodes has it")

script = "for i in 1 2 3 4 5; do echo line $i; done; exec sleep 3600"
pod = client.V1Pod(
    metadata=meta(name, labels={"app": "py"}),
    spec=client.V1PodSpec(
        node_name=node_name,
        termination_grace_period_seconds=2,
        containers=[client.V1Container(name="app", image=image, command=["sh", "-c", script])],
    ),
)
v1.create_namespaced_pod(ns, pod)


def running():
    p = v1.read_namespaced_pod(name, ns)
    statuses = p.status.container_statuses or []
    return p if p.status.phase == "Running" and any(s.state.running for s in statuses) else None


pod = wait_until("the pod Running", running, limit=90)
status = pod.status.container_statuses[0]
check((status.name, status.ready, status.restart_count) == ("app", True, 0), "the container status deserializes: app, ready, 0 restarts", status)
check(status.image and status.image_id is not None, "the container status has image and imageID", (status.image, status.image_id))
check(pod.status.pod_ip and pod.status.host_ip, "the pod has podIP and hostIP", (pod.status.pod_ip, pod.status.host_ip))
listed = v1.list_namespaced_pod(ns, field_selector=f"spec.nodeName={node_name}")
check([p.metadata.name for p in listed.items] == [name], "list pods by spec.nodeName", [p.metadata.name for p in listed.items])

# Logs: the whole output once it is all there, then the last lines.
logs = wait_until("five lines of logs", lambda: (lambda t: t if "line 5" in t else None)(v1.read_namespaced_pod_log(name, ns)), limit=30)
check(logs == "line 1\nline 2\nline 3\nline 4\nline 5\n", "read_namespaced_pod_log gives the container's output", logs)
tail = v1.read_namespaced_pod_log(name, ns, container="app", tail_lines=2)
check(tail == "line 4\nline 5\n", "read_namespaced_pod_log with tail_lines=2", tail)
expect_status(404, "the logs of a missing pod", v1.read_namespaced_pod_log, "nope", ns)

# Following the logs the way Python programs do: Watch().stream over read_namespaced_pod_log (follow=True).
follower = watch.Watch()
followed = []
for line in follower.stream(v1.read_namespaced_pod_log, name, ns, container="app"):
    followed.append(line)
    if line == "line 5":
        follower.stop()
check(followed == ["line 1", "line 2", "line 3", "line 4", "line 5"], "follow the logs with Watch().stream", followed)

# Exec: stdout, stderr and the exit code.
resp = stream(
    v1.connect_get_namespaced_pod_exec,
    name,
    ns,
    command=["sh", "-c", "echo hi; echo oops >&2; exit 3"],
    stderr=True,
    stdin=False,
    stdout=True,
    tty=False,
    _preload_content=False,
)
resp.run_forever(timeout=30)
check(not resp.is_open(), "the exec session ended when the command did")
out, err = resp.read_stdout(), resp.read_stderr()
check(out == "hi\n", "exec stdout", out)
check(err == "oops\n", "exec stderr", err)
check(resp.returncode == 3, "exec exit code 3 from the error channel", resp.returncode)

# The simple form: the output as the call's result.
hostname = stream(v1.connect_get_namespaced_pod_exec, name, ns, command=["hostname"], stderr=True, stdin=False, stdout=True, tty=False)
check(hostname == f"{name}\n", "exec with preloaded content returns the output", hostname)

# stdin. Clients that offer v5.channel.k8s.io (37 does) close stdin with its
# close signal, and the command sees the end of its input; with v4 there is
# no way to, so the command reads one line.
offers_v5 = hasattr(ws_client, "V5_CHANNEL_PROTOCOL")
resp = stream(
    v1.connect_get_namespaced_pod_exec,
    name,
    ns,
    command=["tr", "a-z", "A-Z"] if offers_v5 else ["sh", "-c", "head -n 1 | tr a-z A-Z"],
    stderr=True,
    stdin=True,
    stdout=True,
    tty=False,
    _preload_content=False,
)
resp.write_stdin("hello python\n")
if offers_v5:
    check(resp.subprotocol == ws_client.V5_CHANNEL_PROTOCOL, "the server picks v5.channel.k8s.io", resp.subprotocol)
    resp.close_channel(0)
resp.run_forever(timeout=30)
upper = resp.read_stdout()
check(upper == "HELLO PYTHON\n", "exec with stdin", upper)
check(resp.returncode == 0, "exit code 0", resp.returncode)

v1.delete_namespaced_pod(name, ns, grace_period_seconds=0)
ok("delete the pod with gracePeriodSeconds=0")


def gone():
    try:
        v1.read_namespaced_pod(name, ns)
        return None
    except client.ApiException as error:
        return error.status == 404 or None


wait_until("the pod gone", gone, limit=60)
ok("the pod is gone")
print("logs_exec: all checks passed")
