"""Shared by the scripts that tests/python_client.rs runs with the official
Python client (PyPI `kubernetes`) against a real berth-apiserver: load the
kubeconfig the test wrote, report each check as it passes, and assert on
the Kubernetes `Status` of failed calls.

Every check prints `ok: ...`; the first failed one raises, so the script
exits non-zero with a traceback naming what was expected and what came back.
"""

import json
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def connect():
    """A CoreV1Api for the kubeconfig given as the first argument."""
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} KUBECONFIG [ARGS...]")
    config.load_kube_config(config_file=sys.argv[1])
    return client.CoreV1Api()


def ok(what):
    print(f"ok: {what}", flush=True)


def check(condition, what, got=None):
    """Asserts `condition`, showing `got` when it does not hold."""
    if not condition:
        raise AssertionError(f"{what}; got: {got!r}")
    ok(what)


def body_of(error):
    """The JSON body of an ApiException (a metav1.Status from a Kubernetes server)."""
    text = error.body
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        return json.loads(text or "")
    except ValueError:
        raise AssertionError(f"the error body is not JSON: HTTP {error.status} {text!r}")


def expect_status(code, what, call, *args, **kwargs):
    """Calls `call`, which must fail with HTTP `code` and a matching Status body; returns the body."""
    try:
        result = call(*args, **kwargs)
    except ApiException as error:
        if error.status != code:
            raise AssertionError(f"{what}: expected HTTP {code}, got {error.status}: {error.body!r}")
        status = body_of(error)
        if status.get("kind") != "Status" or status.get("code") != code or status.get("status") != "Failure":
            raise AssertionError(f"{what}: the body is not a failure Status with code {code}: {status!r}")
        ok(f"{what} (HTTP {code} {status.get('reason')}: {status.get('message')})")
        return status
    raise AssertionError(f"{what}: expected HTTP {code}, but the call succeeded: {result!r}")


def wait_until(what, probe, limit=60.0, interval=0.2):
    """Calls `probe` until it returns something truthy (returned), or fails after `limit` seconds."""
    deadline = time.monotonic() + limit
    last = None
    while True:
        try:
            last = probe()
        except ApiException as error:
            last = error
        if last and not isinstance(last, ApiException):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def names(items):
    return sorted(item.metadata.name for item in items)


def meta(name, namespace=None, labels=None):
    return client.V1ObjectMeta(name=name, namespace=namespace, labels=labels)
