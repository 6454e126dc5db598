"""The chart renders what the controller needs, and nothing more: helm lint + helm template."""

from __future__ import annotations

import collections
import json
import re
import subprocess
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest

from reconciler.controller.metrics import Metrics
from reconciler.controller.record import Reason
from reconciler.kinds import ALLOWED, CALICO_CRD, CALICO_V3, K8S_NETWORKING
from reconciler.localcluster import build
from tests.chart.helm import CHART, CI_VALUES, HelmError, lint, template

VALUES_FILES = sorted(p.name for p in CI_VALUES.glob("*.yaml"))
WRITE_VERBS = ["get", "list", "watch", "create", "patch", "delete"]
CALICO_PLURALS = sorted(spec.plural for spec in ALLOWED[f"{CALICO_V3}/v3"].values())
TIER_PSEUDO = sorted(
    f"tier.{p}" for p in CALICO_PLURALS if p.endswith("policies") and "kubernetes" not in p
)


def _rules(role: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(group, resource, resourceName or '*', verb) for every grant in a Role/ClusterRole."""
    return {
        (group, resource, name, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for name in rule.get("resourceNames") or ["*"]
        for verb in rule["verbs"]
    }


def _grants(
    groups: list[str], resources: list[str], verbs: list[str], name: str = "*"
) -> set[tuple[str, str, str, str]]:
    return {(g, r, name, v) for g in groups for r in resources for v in verbs}


@pytest.mark.parametrize("values", ["", *VALUES_FILES])
def test_helm_lint_strict_is_clean(helm: str, values: str) -> None:
    out = lint(helm, *([values] if values else []))
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out


@pytest.mark.parametrize("values", VALUES_FILES)
def test_every_object_is_namespaced_to_the_release_or_cluster_scoped(
    helm: str, values: str
) -> None:
    rendered = template(helm, values, namespace="firewall")
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in rendered.objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "fw"
        if obj["kind"] in cluster_scoped:
            assert obj["metadata"]["name"] == "firewall-fw-policy-reconciler"
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == "firewall"


def test_default_install(helm: str) -> None:
    r = template(helm, "default-values.yaml")
    assert r.kinds() == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "NetworkPolicy",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )
    deploy = r.one("Deployment")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}  # never two reconcilers at once
    assert r.args() == [
        "--repo", "https://git.example.com/platform/firewall.git",
        "--interval", "1m",
        "--retry-interval", "30s",
        "--namespace", "firewall",
        "--applyset", "policy-reconciler",
        "--cache-dir", "/var/cache/policy-reconciler",
        "--metrics-port", "9090",
        "--max-prune", "30%",
        "--log-level", "info",
        "--log-format", "json",
    ]  # fmt: skip
    container = r.container()
    assert container["image"] == "policy-reconciler:0.1.0"  # appVersion
    assert "command" not in container  # the image's ENTRYPOINT is `policy-reconciler run`
    assert {e["name"]: e.get("value") or e["valueFrom"] for e in container["env"]} == {
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},  # leader-election identity
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
    }
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9090}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/readyz?exclude=revision&exclude=suspended",
        "port": "metrics",
    }
    assert container["resources"]["limits"]["memory"] == "512Mi"
    service = r.one("Service")
    assert {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        "metrics": (9090, "metrics"),
    }
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]


def test_restricted_pod_security_and_writable_mounts_only_where_needed(helm: str) -> None:
    r = template(helm, "default-values.yaml")
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc = r.container()["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["runAsNonRoot"] is True
    assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True  # it talks to the API server
    assert r.one("ServiceAccount")["automountServiceAccountToken"] is False  # nobody else
    assert pod["enableServiceLinks"] is False
    assert {m["mountPath"]: m["name"] for m in r.container()["volumeMounts"]} == {
        "/var/cache/policy-reconciler": "cache",
        "/tmp": "tmp",
    }
    assert {v["name"]: set(v) - {"name"} for v in pod["volumes"]} == {
        "cache": {"emptyDir"},
        "tmp": {"emptyDir"},
    }


def test_cluster_role_grants_exactly_the_managed_kinds_and_verbs(helm: str) -> None:
    r = template(helm, "default-values.yaml")
    expected = (
        _grants([CALICO_CRD, CALICO_V3], CALICO_PLURALS, WRITE_VERBS)
        | _grants([CALICO_V3], TIER_PSEUDO, WRITE_VERBS)
        | _grants([K8S_NETWORKING], ["networkpolicies"], WRITE_VERBS)
        | _grants([""], ["nodes", "namespaces"], ["get", "list", "watch"])
        | _grants([""], ["pods", "serviceaccounts"], ["list"])  # the safe order's endpoints
    )
    assert _rules(r.one("ClusterRole")) == expected
    assert len(CALICO_PLURALS) == 9
    binding = r.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == r.one("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fw-policy-reconciler", "namespace": "firewall"}
    ]


def test_cluster_role_narrows_to_one_calico_flavour(helm: str) -> None:
    r = template(helm, "default-values.yaml", sets=["rbac.calicoApiGroups={crd.projectcalico.org}"])
    groups = {g for g, *_ in _rules(r.one("ClusterRole"))}
    assert groups == {CALICO_CRD, K8S_NETWORKING, ""}


def test_role_limits_configmaps_to_the_applyset_and_status_and_has_no_lease_alone(
    helm: str,
) -> None:
    r = template(helm, "default-values.yaml", sets=["applySet.name=fw-prod"])
    assert _rules(r.one("Role")) == (
        _grants([""], ["configmaps"], ["create", "list", "watch"])
        | _grants([""], ["configmaps"], ["get", "patch"], "fw-prod")
        | _grants([""], ["configmaps"], ["get", "patch"], "fw-prod-status")
        | _grants([""], ["events"], ["create", "patch"])
    )
    assert r.args()[r.args().index("--applyset") + 1] == "fw-prod"
    binding = r.one("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": r.one("Role")["metadata"]["name"],
    }


def test_two_replicas_turn_on_leader_election_with_its_lease(helm: str) -> None:
    r = template(helm, "ha-values.yaml")
    deploy = r.one("Deployment")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"
    assert r.args().count("--leader-elect") == 1
    assert r.args()[r.args().index("--branch") + 1] == "main"
    lease = {g for g in _rules(r.one("Role")) if g[1] == "leases"}
    assert lease == (
        _grants(["coordination.k8s.io"], ["leases"], ["create"])
        | _grants(["coordination.k8s.io"], ["leases"], ["get", "update"],
                  "policy-reconciler-leader")
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sets", "elect"),
    [
        ([], False),
        (["replicaCount=1", "leaderElection.enabled=true"], True),
        (["replicaCount=3"], True),
        (["replicaCount=0"], False),
    ],
)
def test_leader_elect_flag_follows_replicas_or_the_switch(
    helm: str, sets: list[str], elect: bool
) -> None:
    r = template(helm, "default-values.yaml", sets=sets)
    assert ("--leader-elect" in r.args()) is elect
    assert any(g[1] == "leases" for g in _rules(r.one("Role"))) is elect


def test_every_secret_is_referenced_mounted_read_only_and_passed_by_path(helm: str) -> None:
    r = template(helm, "full-values.yaml")
    assert r.all("Secret") == []  # the chart only references Secrets
    args = r.args()

    def flag(name: str) -> str:
        return args[args.index(name) + 1]

    assert flag("--tag") == "v1.4.0" and "--branch" not in args
    assert flag("--path") == "clusters/prod"
    files = {
        "--webhook-secret-file": ("webhook-hmac", "token"),
        "--git-token-file": ("git-token", "password"),
        "--git-ssh-key-file": ("git-ssh", "identity"),
        "--git-known-hosts-file": ("git-ssh", "known_hosts"),
        "--signing-keys": ("signing-keys", "allowed_signers"),
    }
    pod = r.one("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in r.container()["volumeMounts"]}
    for option, (secret, key) in files.items():
        path = flag(option)
        (volume,) = [v for v in volumes.values() if v.get("secret", {}).get("secretName") == secret]
        mount = mounts[volume["name"]]
        assert mount["readOnly"] is True
        assert path == f"{mount['mountPath']}/{key}"
        assert {"key": key, "path": key} in volume["secret"]["items"]
        assert volume["secret"]["defaultMode"] == 0o440
    assert flag("--verify-signatures") == "ssh"
    assert {"--suspend", "--adopt", "--no-prune"} <= set(args)
    assert flag("--max-prune") == "10%"
    assert flag("--git-username") == "oauth2"
    assert flag("--calico-version") == "3.29"
    assert "--no-self-heal" in args
    assert (flag("--log-level"), flag("--log-format")) == ("debug", "text")


def test_service_monitor_and_ingress_when_asked(helm: str) -> None:
    r = template(helm, "full-values.yaml")
    monitor = r.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert monitor["spec"]["selector"]["matchLabels"] == r.one("Service")["spec"]["selector"]
    ingress = r.one("Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "reconciler.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/hook" and path["pathType"] == "Exact"
    assert path["backend"]["service"] == {
        "name": r.one("Service")["metadata"]["name"],
        "port": {"name": "webhook"},
    }
    assert ingress["spec"]["ingressClassName"] == "nginx"
    default = template(helm, "default-values.yaml")
    assert default.all("ServiceMonitor") == [] and default.all("Ingress") == []


def test_example_alerts_use_metrics_the_controller_exports(helm: str) -> None:
    rules = template(helm, "full-values.yaml").one("PrometheusRule")
    (group,) = rules["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    exported = generate_latest(
        Metrics(clusters=list, watch_restarts=collections.Counter).registry
    ).decode()

    assert set(alerts) == {"PolicyReconcilerFailing", "PolicyReconcilerDriftHealedRepeatedly"}
    assert alerts["PolicyReconcilerFailing"]["for"] == "5m"
    assert "[1h])) > 3" in alerts["PolicyReconcilerDriftHealedRepeatedly"]["expr"]
    assert (
        f'reason="{Reason.DRIFT_HEALED.value}"'
        in (alerts["PolicyReconcilerDriftHealedRepeatedly"]["expr"])
    )
    for alert in alerts.values():
        for metric in re.findall(r"policy_reconciler_\w+", alert["expr"]):
            assert f"# TYPE {metric} " in exported, metric
    assert rules["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert template(helm, "default-values.yaml").all("PrometheusRule") == []


def _ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def test_network_policy_admits_only_metrics_and_webhook_and_egresses_to_dns_api_git(
    helm: str,
) -> None:
    r = template(helm, "default-values.yaml")
    spec = r.one("NetworkPolicy")["spec"]
    assert (
        spec["podSelector"]["matchLabels"] == r.one("Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert [_ports(rule) for rule in spec["ingress"]] == [{("TCP", 9090)}]
    assert all("from" not in rule for rule in spec["ingress"])  # any source, those ports only
    dns, api, git = spec["egress"]
    assert _ports(dns) == {("UDP", 53), ("TCP", 53)}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert _ports(api) == {("TCP", 443), ("TCP", 6443)} and "to" not in api
    assert _ports(git) == {("TCP", 443), ("TCP", 22)}
    assert git["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]


def test_network_policy_narrowed_peers(helm: str) -> None:
    spec = template(helm, "full-values.yaml").one("NetworkPolicy")["spec"]
    metrics, webhook = spec["ingress"]
    assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert webhook["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    _dns, api, git = spec["egress"]
    assert api == {"ports": [{"protocol": "TCP", "port": 6443}],
                   "to": [{"ipBlock": {"cidr": "10.240.0.11/32"}}]}  # fmt: skip
    assert git == {"ports": [{"protocol": "TCP", "port": 22}],
                   "to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}]}  # fmt: skip


def test_network_policy_off(helm: str) -> None:
    r = template(helm, "no-networkpolicy-values.yaml")
    assert r.all("NetworkPolicy") == []
    assert "Deployment" in r.kinds()


def test_webhook_on_opens_its_port_everywhere(helm: str) -> None:
    r = template(
        helm, "default-values.yaml",
        sets=["webhook.enabled=true", "webhook.secret.existingSecret=hmac", "webhook.port=8443"],
    )  # fmt: skip
    args = r.args()
    assert args[args.index("--webhook-port") + 1] == "8443"
    assert args[args.index("--webhook-secret-file") + 1] == "/etc/policy-reconciler/webhook/secret"
    assert [p["containerPort"] for p in r.container()["ports"]] == [9090, 8443]
    assert [p["port"] for p in r.one("Service")["spec"]["ports"]] == [9090, 8443]
    assert [_ports(rule) for rule in r.one("NetworkPolicy")["spec"]["ingress"]] == [
        {("TCP", 9090)},
        {("TCP", 8443)},
    ]
    off = template(helm, "default-values.yaml")
    assert "--webhook-port" not in off.args() and "webhook" not in str(off.one("Service"))


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["replicaCount=two"], "/replicaCount"),
        (["replicaCount=-1"], "/replicaCount"),
        (["reconcile.intervall=5m"], "intervall"),
        (["reconcile.interval=soon"], "/reconcile/interval"),
        (["reconcile.maxPrune=150%"], "/reconcile/maxPrune"),
        (["git.verifySignatures.mode=gpg"], "/git/verifySignatures/mode"),
        (["webhook.port=70000"], "/webhook/port"),
        (["rbac.calicoApiGroups={policy.networking.k8s.io}"], "/rbac/calicoApiGroups"),
        (["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["networkPolicy.git.cidrs={anywhere}"], "/networkPolicy/git/cidrs"),
        (["git.commit=main"], "/git/commit"),
        (["log.format=xml"], "/log/format"),
        (["calicoVersion=latest"], "/calicoVersion"),
        (["leaderElection.leaseName=x"], "leaseName"),
    ],
)
def test_schema_rejects_bad_values(helm: str, sets: list[str], complaint: str) -> None:
    with pytest.raises(HelmError, match="schema") as err:
        template(helm, "default-values.yaml", sets=sets)
    assert complaint in str(err.value)


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["git.repo="], "git.repo is required"),
        (["git.branch=main", "git.tag=v1"], "at most one of branch, tag and commit"),
        (["git.verifySignatures.mode=openpgp"], "verifySignatures.existingSecret is required"),
        (["git.auth.ssh.existingSecret=k", "git.auth.ssh.knownHostsKey="], "knownHostsKey"),
        (["webhook.ingress.enabled=true"], "needs webhook.enabled"),
        (["webhook.enabled=true"], "webhook.secret.existingSecret is required"),
        (["serviceAccount.create=false"], "serviceAccount.name is required"),
    ],
)
def test_template_refuses_inconsistent_values(helm: str, sets: list[str], complaint: str) -> None:
    with pytest.raises(HelmError, match=complaint):
        template(helm, "default-values.yaml", sets=sets)


def test_existing_service_account_is_bound_and_not_created(helm: str) -> None:
    r = template(
        helm, "default-values.yaml", sets=["serviceAccount.create=false", "serviceAccount.name=fw"]
    )
    assert r.all("ServiceAccount") == []
    assert r.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "fw"
    assert r.one("RoleBinding")["subjects"][0]["name"] == "fw"
    assert r.one("ClusterRoleBinding")["subjects"][0]["name"] == "fw"


def test_image_digest_wins_over_tag(helm: str) -> None:
    digest = "sha256:" + "ab" * 32
    r = template(helm, "default-values.yaml", sets=[f"image.digest={digest}", "image.tag=x"])
    assert r.container()["image"] == f"policy-reconciler@{digest}"


def test_chart_requires_kubernetes_1_27(helm: str) -> None:
    assert template(helm, "default-values.yaml", kube_version="1.27.0").one("Deployment")
    with pytest.raises(HelmError, match="incompatible"):
        template(helm, "default-values.yaml", kube_version="1.26.9")


def test_built_helm_knows_its_version_and_a_supported_kubernetes(helm: str) -> None:
    """Helm's version ldflags are set at build: without them it says v3.19 and defaults to
    Kubernetes v1.20, which the chart's kubeVersion refuses."""
    version = subprocess.run(
        [helm, "version", "--short"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip().split("+")[0] == build.HELM_VERSION
    assert template(helm, "default-values.yaml", kube_version=None).one("Deployment")


def test_schema_closes_every_object_it_describes() -> None:
    """A misspelt key anywhere fails the install (free-form Kubernetes objects excepted)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node and node.get("additionalProperties") is not False:
            open_objects.append(path or "/")
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}/{key}")

    walk(schema, "")
    assert open_objects == []
    assert schema["additionalProperties"] is False
