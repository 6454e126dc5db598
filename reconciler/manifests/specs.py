"""The known `spec` fields of every kind, with their types and checks, as schema data.

Calico fields follow the Go types in projectcalico/calico api/pkg/apis/projectcalico/v3/
(policy_common.go, globalnetworkpolicy.go, networkpolicy.go, staged*.go, hostendpoint.go,
globalnetworkset.go, networkset.go, tier.go, kubecontrollersconfig.go), release-v3.31 plus the
few fields v3.32 adds. Kubernetes fields follow networking.k8s.io/v1 NetworkPolicySpec.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from reconciler import kinds
from reconciler.manifests import checks as c
from reconciler.manifests import validate_rules as r
from reconciler.manifests.schema import (
    BOOLEAN,
    INT_OR_STRING,
    INTEGER,
    NUMBER,
    STRING,
    Dict,
    Issue,
    LeafCheck,
    Node,
    Obj,
    Scalar,
    Seq,
    unique_items,
)

CALICO = "calico"
K8S = "k8s"
_FAMILIES = {kinds.CALICO_V3: CALICO, kinds.CALICO_CRD: CALICO, kinds.K8S_NETWORKING: K8S}


def family_of(group: str) -> str:
    """Both Calico API flavours share one schema."""
    return _FAMILIES.get(group, group)


def _str(check: LeafCheck | None = None) -> Scalar:
    return Scalar(STRING, check)


def _set_of(check: LeafCheck | None = None) -> Seq:
    return Seq(_str(check), unique_items)


def _enum(*values: str, what: str) -> Scalar:
    return _str(c.one_of(*values, what=what))


LABELS = Dict(c.qualified_name, _str(c.label_value))
ANNOTATIONS = Dict(c.annotation_key, _str())

# --- Calico rules (policy_common.go) -----------------------------------------------------

_ICMP = Obj(
    {
        "type": Scalar(INTEGER, c.int_range(0, 254, what="ICMP type")),
        "code": Scalar(INTEGER, c.int_range(0, 255, what="ICMP code")),
    },
    checks=(r.code_needs_type,),
)
_PORTS = Seq(Scalar(INT_OR_STRING, c.calico_port))
_RULE_NETS = _set_of(c.calico_rule_net)
_ENTITY = Obj(
    {
        "nets": _RULE_NETS,
        "notNets": _RULE_NETS,
        "selector": _str(c.selector),
        "notSelector": _str(c.selector),
        "namespaceSelector": _str(c.rule_namespace_selector),
        "ports": _PORTS,
        "notPorts": _PORTS,
        "serviceAccounts": Obj({"names": _set_of(), "selector": _str(c.selector)}),
        "services": Obj(
            {"name": _str(c.dns_subdomain), "namespace": _str(c.dns_label)},
            required=frozenset({"name"}),
        ),
    },
    checks=(r.services_alone,),
)
_HTTP = Obj(
    {
        "methods": _set_of(),
        "paths": Seq(Obj({"exact": _str(), "prefix": _str()}, checks=(r.one_http_path,))),
    }
)


def _rule(direction: str, *, global_scope: bool) -> Obj:
    return Obj(
        {
            "action": _enum("Allow", "Deny", "Log", "Pass", what="action"),
            "ipVersion": Scalar(INTEGER, c.one_of(4, 6, what="ipVersion")),
            "protocol": Scalar(INT_OR_STRING, c.calico_protocol),
            "notProtocol": Scalar(INT_OR_STRING, c.calico_protocol),
            "icmp": _ICMP,
            "notICMP": _ICMP,
            "source": _ENTITY,
            "destination": _ENTITY,
            "http": _HTTP,
            "metadata": Obj({"annotations": ANNOTATIONS}),
        },
        required=frozenset({"action"}),
        checks=r.rule_checks(direction, global_scope=global_scope),
    )


# --- Calico policies ---------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def host_stages(spec: Mapping[str, Any]) -> Iterator[Issue]:
    """validateGlobalNetworkPolicySpec: the untracked and preDNAT stages."""
    pre, untracked = spec.get("preDNAT") is True, spec.get("doNotTrack") is True
    if pre and untracked:
        yield Issue(("preDNAT",), "preDNAT and doNotTrack cannot both be true")
    if pre and _items(spec.get("egress")):
        yield Issue(("egress",), "a preDNAT policy cannot have egress rules")
    if pre and "Egress" in _items(spec.get("types")):
        yield Issue(("types",), "a preDNAT policy cannot have type Egress")
    if (pre or untracked) and spec.get("applyOnForward") is not True:
        message = "preDNAT and doNotTrack policies need applyOnForward: true"
        yield Issue(("applyOnForward",), message)


_DELETE_KEEPS = frozenset({"stagedAction", "tier"})


def staged_delete_is_empty(spec: Mapping[str, Any]) -> Iterator[Issue]:
    """A staged Delete names the policy to delete: every other field must be empty."""
    if spec.get("stagedAction") != "Delete":
        return
    for key in sorted(set(spec) - _DELETE_KEEPS):
        if spec[key] not in (None, "", [], {}, False):
            yield Issue((key,), "must be empty when stagedAction is Delete")


_HOST_STAGE_FIELDS = {
    "namespaceSelector": _str(c.selector),
    "doNotTrack": Scalar(BOOLEAN),
    "preDNAT": Scalar(BOOLEAN),
    "applyOnForward": Scalar(BOOLEAN),
}


def _policy(*, global_scope: bool, staged: bool) -> Obj:
    fields: dict[str, Node] = {
        "tier": _str(c.dns_label),  # validateTier: tier names are labels, no dots
        "order": Scalar(NUMBER, c.finite_number),
        "ingress": Seq(_rule("ingress", global_scope=global_scope)),
        "egress": Seq(_rule("egress", global_scope=global_scope)),
        "selector": _str(c.selector),
        "types": Seq(_enum("Ingress", "Egress", what="policy type"), unique_items),
        "serviceAccountSelector": _str(c.selector),
        "performanceHints": _set_of(c.one_of("AssumeNeededOnEveryNode", what="hint")),
    }
    checks = (host_stages,) if global_scope else ()
    if global_scope:
        fields |= _HOST_STAGE_FIELDS
    if staged:
        fields["stagedAction"] = _enum("Set", "Delete", "Learn", "Ignore", what="stagedAction")
        checks = (*checks, staged_delete_is_empty)
    return Obj(fields, checks=checks)


# --- Calico endpoints, sets, tiers, kube-controllers -------------------------------------


def interface_or_ips(spec: Mapping[str, Any]) -> Iterator[Issue]:
    if not spec.get("interfaceName") and not _items(spec.get("expectedIPs")):
        yield Issue(("interfaceName",), "a host endpoint needs interfaceName or expectedIPs")


_HOST_ENDPOINT = Obj(
    {
        "node": _str(c.dns_subdomain),
        "interfaceName": _str(c.interface_name),
        "expectedIPs": _set_of(c.ip_address),
        "profiles": _set_of(c.dns_subdomain),
        "ports": Seq(
            Obj(
                {
                    "name": _str(c.port_name),
                    "protocol": Scalar(INT_OR_STRING, c.port_protocol),
                    "port": Scalar(INTEGER, c.port_number),
                },
                required=frozenset({"name", "protocol", "port"}),
            )
        ),
    },
    required=frozenset({"node"}),
    checks=(interface_or_ips,),
)
_NETWORK_SET = Obj({"nets": _set_of(c.calico_set_net)})
_TIER = Obj(
    {
        "order": Scalar(NUMBER, c.finite_number),
        "defaultAction": _enum("Deny", "Pass", what="defaultAction"),
    }
)

_ENABLED = _enum("Enabled", "Disabled", what="mode")
_DURATION = _str(c.go_duration)
_PERIOD_ONLY = Obj({"reconcilerPeriod": _DURATION})
_AUTO_HOST_ENDPOINTS = Obj(
    {
        "autoCreate": _ENABLED,
        "createDefaultHostEndpoint": _ENABLED,
        "templates": Seq(
            Obj(
                {
                    "generateName": _str(c.dns_subdomain),
                    "interfaceCIDRs": _set_of(c.calico_set_net),
                    "interfacePattern": _str(),
                    "labels": LABELS,
                    "nodeSelector": _str(c.selector),
                }
            )
        ),
    }
)
_NODE_CONTROLLER = Obj(
    {
        "reconcilerPeriod": _DURATION,
        "syncLabels": _ENABLED,
        "hostEndpoint": _AUTO_HOST_ENDPOINTS,
        "leakGracePeriod": _DURATION,
    }
)
_PORT_OR_OFF = Scalar(INTEGER, c.int_range(0, 65535, what="port"))
_LOG_LEVELS = ("None", "Debug", "Info", "Warning", "Error", "Fatal", "Panic")
_KUBE_CONTROLLERS = Obj(
    {
        "logSeverityScreen": _enum(*_LOG_LEVELS, what="log level"),
        "healthChecks": _ENABLED,
        "etcdV3CompactionPeriod": _DURATION,
        "prometheusMetricsPort": _PORT_OR_OFF,
        "debugProfilePort": _PORT_OR_OFF,
        "controllers": Obj(
            {
                "node": _NODE_CONTROLLER,
                "policy": _PERIOD_ONLY,
                "workloadEndpoint": _PERIOD_ONLY,
                "serviceAccount": _PERIOD_ONLY,
                "namespace": _PERIOD_ONLY,
                "loadBalancer": Obj(
                    {"assignIPs": _enum("AllServices", "RequestedServicesOnly", what="value")}
                ),
                "policyMigration": Obj({"enabled": _ENABLED}),
            }
        ),
    }
)

# --- Kubernetes NetworkPolicy (networking.k8s.io/v1) -------------------------------------

LABEL_SELECTOR = Obj(
    {
        "matchLabels": LABELS,
        "matchExpressions": Seq(
            Obj(
                {
                    "key": _str(c.qualified_name),
                    "operator": _enum("In", "NotIn", "Exists", "DoesNotExist", what="operator"),
                    "values": Seq(_str(c.label_value)),
                },
                required=frozenset({"key", "operator"}),
                checks=(r.selector_requirement,),
            )
        ),
    }
)
_PEER = Obj(
    {
        "podSelector": LABEL_SELECTOR,
        "namespaceSelector": LABEL_SELECTOR,
        "ipBlock": Obj(
            {"cidr": _str(c.k8s_cidr), "except": Seq(_str(c.k8s_cidr))},
            required=frozenset({"cidr"}),
            checks=(r.except_inside_cidr,),
        ),
    },
    checks=(r.one_peer,),
)
_K8S_PORT = Obj(
    {
        "protocol": _enum("TCP", "UDP", "SCTP", what="protocol"),
        "port": Scalar(INT_OR_STRING, c.k8s_port),
        "endPort": Scalar(INTEGER, c.port_number),
    },
    checks=(r.end_port,),
)
_K8S_NETWORK_POLICY = Obj(
    {
        "podSelector": LABEL_SELECTOR,
        "ingress": Seq(Obj({"from": Seq(_PEER), "ports": Seq(_K8S_PORT)})),
        "egress": Seq(Obj({"to": Seq(_PEER), "ports": Seq(_K8S_PORT)})),
        "policyTypes": Seq(_enum("Ingress", "Egress", what="policy type"), unique_items),
    },
    required=frozenset({"podSelector"}),  # may be {}: all pods of the namespace
)

# (family, kind) -> the schema of `spec`
SPECS: dict[tuple[str, str], Obj] = {
    (CALICO, "GlobalNetworkPolicy"): _policy(global_scope=True, staged=False),
    (CALICO, "StagedGlobalNetworkPolicy"): _policy(global_scope=True, staged=True),
    (CALICO, "NetworkPolicy"): _policy(global_scope=False, staged=False),
    (CALICO, "StagedNetworkPolicy"): _policy(global_scope=False, staged=True),
    (CALICO, "HostEndpoint"): _HOST_ENDPOINT,
    (CALICO, "GlobalNetworkSet"): _NETWORK_SET,
    (CALICO, "NetworkSet"): _NETWORK_SET,
    (CALICO, "Tier"): _TIER,
    (CALICO, "KubeControllersConfiguration"): _KUBE_CONTROLLERS,
    (K8S, "NetworkPolicy"): _K8S_NETWORK_POLICY,
}

# (family, kind) -> the check of metadata.name; anything else is a DNS-1123 subdomain.
# validator.go: policies are labels with an optional "<tier>." prefix; tiers plain labels.
NAME_CHECKS: dict[tuple[str, str], LeafCheck] = {
    (CALICO, "GlobalNetworkPolicy"): c.global_policy_name,
    (CALICO, "StagedGlobalNetworkPolicy"): c.global_policy_name,
    (CALICO, "NetworkPolicy"): c.policy_name,
    (CALICO, "StagedNetworkPolicy"): c.policy_name,
    (CALICO, "Tier"): c.dns_label,
}
