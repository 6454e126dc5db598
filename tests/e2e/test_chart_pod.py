"""The chart's pod, from the image built here, reconciling for real on a real node.

One story, in order (each test builds on the one before): `helm install` -> the pod is Ready
and applies the repo from a git server -> a push is picked up through the webhook Service
(the interval is 10 minutes, so only the webhook can explain it) -> an out-of-band edit is
healed -> /metrics answers through the Service -> `kubectl delete pod`: the new pod converges
with no write to a managed object -> `helm upgrade` with changed values -> `helm uninstall`
leaves nothing cluster-scoped -> `local-cluster down` leaves no process, mount, netns or
cgroup. Every request of the pod is the chart's ServiceAccount's (the audit log says so).

The chart's NetworkPolicy is not enforced here (the node's CNI is the bridge plugin);
Felix enforces it on stand-in pods in tests/dataplane/test_chart_networkpolicy.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler import localcluster
from reconciler.localcluster import launcher, procs
from reconciler.localcluster import node as real_node
from tests.chart.helm import CHART, ROOT
from tests.source.gitserver import GitServer

NS = "policy-reconciler"
RELEASE = "pr"
FULLNAME = "pr-policy-reconciler"
SA_USER = f"system:serviceaccount:{NS}:{FULLNAME}"
WEBHOOK_SECRET = "e2e-webhook-secret"
# example-repo/'s namespaces, labelled as scripts/demo.sh labels them.
NAMESPACES = {
    NS: {},
    "shop": {"field.cattle.io/projectId": "p-apps", "network-policy/ingress": "nginx",
             "network-policy/allow_redis": ""},
    "cache": {"field.cattle.io/projectId": "p-data", "network-policy/role_redis": ""},
    "ingress-nginx": {"field.cattle.io/projectId": "p-system", "ingress": "nginx"},
}  # fmt: skip
NETSETS = "global/network-sets.yaml"
# Writes of the controller that are its bookkeeping, not a change to a managed object.
BOOKKEEPING = {"configmaps", "events", "leases"}


def _kubectl(info: localcluster.ClusterInfo, *args: str, stdin: str = "") -> str:
    return localcluster.kubectl(info, *args, stdin=stdin)


def _helm(info: localcluster.ClusterInfo, *args: str) -> str:
    proc = subprocess.run(
        [info.helm, f"--kubeconfig={info.kubeconfig}", "-n", NS, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"helm {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def _wait(
    check: Callable[[], Any], timeout: float, what: str, explain: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{explain()}")


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo),
           "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.com",
           "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.com",
           "PATH": "/usr/bin:/bin:/usr/local/bin"}  # fmt: skip
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


class Story:
    """What the tests share: the cluster, the work tree pushed to the git server, values."""

    def __init__(self, info: localcluster.ClusterInfo, server: GitServer, work: Path) -> None:
        self.info, self.server, self.work = info, server, work
        self.values = work.parent / "values.yaml"

    def push(self, message: str) -> str:
        _git(self.work, "add", "-A")
        _git(self.work, "commit", "-q", "-m", message)
        _git(self.work, "push", "-q", "origin", "HEAD:main")
        return _git(self.work, "rev-parse", "HEAD")

    def status(self) -> dict[str, str]:
        out = _kubectl(self.info, "-n", NS, "get", "configmap", "policy-reconciler-status",
                       "-o", "json", "--ignore-not-found")  # fmt: skip
        return json.loads(out)["data"] if out.strip() else {}

    def applied(self, revision: str) -> bool:
        return self.status().get("lastAppliedRevision", "").startswith(revision[:12])

    def wait_applied(self, revision: str, timeout: float, what: str) -> None:
        """Wait for `revision` applied; on timeout, say why: the status and the pods' logs."""
        _wait(lambda: self.applied(revision), timeout, what, self.explain)

    def explain(self) -> str:
        lines = [f"status: {json.dumps(self.status(), indent=1)}"]
        for pod in self.pods():
            name = pod["metadata"]["name"]
            proc = procs.kubectl_run(self.info, "-n", NS, "logs", name, "--tail=80")
            lines += [f"--- logs of {name}:", proc.stdout, proc.stderr]
        return "\n".join(lines)

    def pods(self) -> list[dict[str, Any]]:
        out = _kubectl(self.info, "-n", NS, "get", "pods", "-l",
                       f"app.kubernetes.io/instance={RELEASE}", "-o", "json")  # fmt: skip
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def ready_pod(self) -> str:
        for pod in self.pods():
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            if conditions.get("Ready") == "True":
                return str(pod["metadata"]["name"])
        return ""

    def service_proxy(self, port: str, path: str, body: bytes = b"", **headers: str) -> bytes:
        """Through the chart's Service: the API server's service proxy picks an endpoint
        from it (there is no kube-proxy on the node)."""
        url = f"{self.info.server}/api/v1/namespaces/{NS}/services/{FULLNAME}:{port}/proxy{path}"
        auth = {"Authorization": f"Bearer {launcher.ADMIN_TOKEN}"}
        req = urllib.request.Request(
            url, data=body or None, headers={**auth, **headers}, method="POST" if body else "GET"
        )
        ctx = ssl.create_default_context(
            cafile=str(Path(self.info.state_dir) / "pki/apiserver.crt")
        )
        ctx.check_hostname = False
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return bytes(resp.read())

    def audit(self, since: int = 0) -> list[dict[str, Any]]:
        """The audit log's events from offset `since` (whole lines only: it is being written)."""
        with Path(self.info.audit_log).open("rb") as f:
            f.seek(since)
            return [json.loads(line) for line in f if line.endswith(b"\n") and line.strip()]

    def sa_requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Completed requests of the pod's ServiceAccount since `since` (audit log offset)."""
        return [
            e for e in self.audit(since)
            if e.get("user", {}).get("username") == SA_USER and e.get("stage") == "ResponseComplete"
        ]  # fmt: skip

    def sa_writes(self, since: int) -> list[dict[str, Any]]:
        """The pod's writes to managed objects (not its bookkeeping) since `since`."""
        return [
            e for e in self.sa_requests(since)
            if e.get("verb") in {"create", "update", "patch", "delete"}
            and e.get("objectRef", {}).get("resource") not in BOOKKEEPING
            and "dryRun=All" not in e.get("requestURI", "")
        ]  # fmt: skip


@pytest.fixture(scope="module")
def story(
    node_cluster: localcluster.ClusterInfo,
    git_server: GitServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Story:
    root = tmp_path_factory.mktemp("story")
    bare = git_server.root / "policy.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = root / "work"
    shutil.copytree(ROOT / "example-repo", work)
    _git(work, "init", "-q", "-b", "main")
    _git(work, "remote", "add", "origin", str(bare))
    s = Story(node_cluster, git_server, work)
    s.push("example-repo")
    for name, labels in NAMESPACES.items():
        _kubectl(node_cluster, "create", "namespace", name)
        if labels:
            _kubectl(
                node_cluster, "label", "namespace", name, *[f"{k}={v}" for k, v in labels.items()]
            )
    _kubectl(node_cluster, "-n", NS, "create", "secret", "generic", "webhook",
             f"--from-literal=secret={WEBHOOK_SECRET}")  # fmt: skip
    repository, _, tag = node_cluster_image(node_cluster).rpartition(":")
    s.values.write_text(json.dumps({
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "git": {"repo": f"{git_server.url}/policy.git"},
        # 10 minutes: a push picked up within the test can only have come by the webhook.
        "reconcile": {"interval": "10m", "retryInterval": "5s"},
        "webhook": {"enabled": True, "secret": {"existingSecret": "webhook"}},
        "log": {"format": "text"},
    }))  # fmt: skip
    return s


def node_cluster_image(info: localcluster.ClusterInfo) -> str:
    out = _kubectl(info, "get", "node", "-o", "json")
    names = [n for node in json.loads(out)["items"] for i in node["status"].get("images", [])
             for n in i.get("names", []) if "policy-reconciler:" in n]  # fmt: skip
    assert names, "the image was not loaded into the node"
    return str(names[0])


def test_the_image_carries_correct_oci_labels(image: str) -> None:
    proc = subprocess.run(
        ["podman", "image", "inspect", image], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    labels = json.loads(proc.stdout)[0]["Labels"]
    oci = {k.removeprefix("org.opencontainers.image."): v for k, v in labels.items()}
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert oci["revision"] == head.stdout.strip()
    assert oci["version"] == image.rpartition(":")[2] == "0.1.0"
    assert oci["created"].endswith("Z") and oci["created"][:2] == "20"
    assert oci["title"] == "policy-reconciler"
    assert oci["licenses"] == "Apache-2.0"
    # The base it was really built from: its own ref, no registry prefix glued on.
    assert oci["base.name"].count("docker.io/library/") <= 1
    assert (
        subprocess.run(["podman", "image", "exists", oci["base.name"]], check=False).returncode == 0
    )


def test_helm_install_pod_ready_and_applies_the_repo(story: Story) -> None:
    head = _git(story.work, "rev-parse", "HEAD")
    _helm(
        story.info,
        "install",
        RELEASE,
        str(CHART),
        "-f",
        str(story.values),
        "--wait",
        "--timeout",
        "4m",
    )
    assert story.ready_pod()
    story.wait_applied(head, 60, f"revision {head[:12]} applied")
    nets = json.loads(_kubectl(story.info, "get", "globalnetworksets.crd.projectcalico.org",
                               "kube-apiserver", "-o", "json"))  # fmt: skip
    assert nets["spec"]["nets"] == ["10.240.0.11/32"]
    pod = story.pods()[0]
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts  # a real token, admitted
    # The chart's ServiceAccount made the writes (also the positive control of sa_writes,
    # which the delete-pod test expects to find empty), and was never refused.
    created = [e for e in story.sa_writes(0) if e["verb"] in {"create", "patch"}]
    assert len(created) >= 20, created
    refused = [e for e in story.sa_requests() if e["responseStatus"].get("code") in {401, 403}]
    assert refused == []
    # And every request of the controller (its user agent) came with that identity.
    users = {e["user"]["username"] for e in story.audit()
             if e.get("userAgent", "").startswith("policy-reconciler/")}  # fmt: skip
    assert users == {SA_USER}


def _webhook_push(story: Story, revision: str) -> bytes:
    body = json.dumps({"ref": "refs/heads/main", "after": revision,
                       "repository": {"full_name": "e2e/policy"}}).encode()  # fmt: skip
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return story.service_proxy(
        "webhook", "/", body,
        **{"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
           "X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )  # fmt: skip


def test_a_push_is_picked_up_through_the_webhook_service(story: Story) -> None:
    path = story.work / NETSETS
    path.write_text(path.read_text().replace("10.240.0.11/32", "10.240.0.12/32"))
    revision = story.push("move the API server")
    time.sleep(2)
    assert not story.applied(revision), "applied without the webhook: the test proves nothing"
    _webhook_push(story, revision)
    story.wait_applied(revision, 30, "the pushed revision applied")
    nets = json.loads(_kubectl(story.info, "get", "globalnetworksets.crd.projectcalico.org",
                               "kube-apiserver", "-o", "json"))  # fmt: skip
    assert nets["spec"]["nets"] == ["10.240.0.12/32"]


def test_an_out_of_band_edit_is_healed(story: Story) -> None:
    patch = json.dumps({"spec": {"nets": ["192.0.2.1/32"]}})
    _kubectl(story.info, "patch", "globalnetworksets.crd.projectcalico.org", "kube-apiserver",
             "--type=merge", "-p", patch)  # fmt: skip

    def healed() -> bool:
        out = _kubectl(story.info, "get", "globalnetworksets.crd.projectcalico.org",
                       "kube-apiserver", "-o", "json")  # fmt: skip
        return bool(json.loads(out)["spec"]["nets"] == ["10.240.0.12/32"])

    _wait(healed, 30, "the drift healed")


def test_metrics_through_the_service(story: Story) -> None:
    text = story.service_proxy("metrics", "/metrics").decode()
    assert "policy_reconciler_reconcile_runs_total" in text
    assert 'policy_reconciler_objects_written_total{action="create"}' in text


def test_kubectl_delete_pod_the_new_pod_converges_without_writes(story: Story) -> None:
    old = story.ready_pod()
    revision = story.status()["lastAppliedRevision"]
    since = Path(story.info.audit_log).stat().st_size
    _kubectl(story.info, "-n", NS, "delete", "pod", old, "--wait=true")
    new = _wait(lambda: (p := story.ready_pod()) != old and p, 120, "a new Ready pod")
    assert new != old
    # The new pod ran (its own startup run, read through the kubelet) and left every
    # managed object alone.
    _wait(lambda: "trigger=startup" in _kubectl(story.info, "-n", NS, "logs", new), 60,
          "the new pod's first run")  # fmt: skip
    assert story.status()["lastAppliedRevision"] == revision
    assert story.sa_writes(since) == []


def test_helm_upgrade_with_changed_values(story: Story) -> None:
    old = story.ready_pod()
    _helm(story.info, "upgrade", RELEASE, str(CHART), "-f", str(story.values),
          "--set", "reconcile.interval=7m", "--set", "log.level=debug",
          "--wait", "--timeout", "4m")  # fmt: skip
    new = _wait(lambda: (p := story.ready_pod()) != old and p, 120, "the upgraded pod Ready")
    pod = next(p for p in story.pods() if p["metadata"]["name"] == new)
    args = pod["spec"]["containers"][0]["args"]
    assert args[args.index("--interval") + 1] == "7m"
    assert args[args.index("--log-level") + 1] == "debug"
    assert story.applied(_git(story.work, "rev-parse", "HEAD"))


def _cluster_scoped(info: localcluster.ClusterInfo) -> list[str]:
    out = _kubectl(info, "get", "clusterroles,clusterrolebindings", "-o", "name",
                   "-l", f"app.kubernetes.io/instance={RELEASE}")  # fmt: skip
    return out.split()


def test_helm_uninstall_leaves_no_cluster_scoped_objects(story: Story) -> None:
    assert _cluster_scoped(story.info), "nothing to look for: the check proves nothing"
    _helm(story.info, "uninstall", RELEASE, "--wait", "--timeout", "2m")
    assert _cluster_scoped(story.info) == []
    _wait(lambda: not story.pods(), 60, "the pod gone")


def test_local_cluster_down_leaves_nothing_behind(story: Story, node_state: Path) -> None:
    plan = real_node.load(node_state)
    assert plan is not None
    assert Path(f"/run/netns/{plan.netns}").exists()
    localcluster.down(node_state)
    assert not Path(f"/run/netns/{plan.netns}").exists()
    mounts = Path("/proc/mounts").read_text()
    assert str(node_state) not in mounts
    leftovers = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _cmdline_has(p, str(node_state))
    ]
    assert leftovers == []
    assert not any(Path("/sys/fs/cgroup").glob("*/kubepods"))
    nat = subprocess.run(
        ["iptables", "-t", "nat", "-S"], capture_output=True, text=True, check=False
    )
    assert nat.returncode == 0, nat.stderr
    assert plan.host_ip not in nat.stdout


def _cmdline_has(proc: Path, text: str) -> bool:
    try:
        return text.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False
