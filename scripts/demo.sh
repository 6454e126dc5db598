#!/usr/bin/env bash
# The demo behind `make demo`: reconcile example-repo/ into the built-in local
# control plane, drift it out of band, watch plan name who did it, heal it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
# plan exits 1 when there are changes (like flux diff): expected here, not a failure.
run_plan() { printf '$ %s\n' "$*"; "$@" || [ $? -eq 1 ]; }
# The first plan/apply touch every object: show one line per object and the summary.
# On an error (exit code 2) everything is shown.
headlines() {
  printf '$ %s   # one line per object shown\n' "$*"
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  if [ "$rc" -gt 1 ]; then printf '%s\n' "$out"; return "$rc"; fi
  printf '%s\n' "$out" | grep -E '^(► |Plan:|Apply:|Apply order:|  keeps:|No changes|warning:)'
}

# As root (with iptables), Felix runs as the dataplane: one network namespace per node.
DATAPLANE=""
# DEMO_DATAPLANE=off: without Felix even as root.
if [ "$(id -u)" -eq 0 ] && command -v iptables >/dev/null && [ "${DEMO_DATAPLANE:-}" != off ]; then
  DATAPLANE="--dataplane"
fi
step "Start the local control plane (real etcd + kube-apiserver, Calico CRDs, 3 Nodes${DATAPLANE:+, Felix per node})"
# DEMO_STATE_DIR: run beside another local cluster (the default state dir is shared).
STATE=(${DEMO_STATE_DIR:+--state-dir "$DEMO_STATE_DIR"})
eval "$(policy-reconciler local-cluster up $DATAPLANE "${STATE[@]}")"
BIN="$(policy-reconciler local-cluster build 2>/dev/null)"
kubectl() { "$BIN/kubectl" "$@"; }
echo "export KUBECONFIG=$KUBECONFIG"
run kubectl get nodes -L node-role.kubernetes.io/control-plane,kubernetes-worker
kubectl get crd -o name | grep -c projectcalico.org | xargs printf '%s Calico CRDs installed\n'

step "Namespaces: ours, and example-repo's, labelled as Rancher and the app teams label them"
namespace() {  # name, then labels (key=value): templates and policies select namespaces by them
  local name=$1; shift
  kubectl create namespace "$name" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  [ $# -eq 0 ] || kubectl label namespace "$name" --overwrite "$@" >/dev/null
  echo "namespace/$name $*"
}
namespace policy-reconciler
namespace shop field.cattle.io/projectId=p-apps network-policy/ingress=nginx network-policy/allow_redis=
namespace cache field.cattle.io/projectId=p-data network-policy/role_redis=
namespace ingress-nginx field.cattle.io/projectId=p-system ingress=nginx
namespace cattle-system

step "Pods, as kubelet and Calico's CNI report them (example-repo/checks/pods.yaml selects them)"
pod() {  # namespace name node ip serviceaccount labels-json
  local ns=$1 name=$2 node=$3 ip=$4 sa=$5 labels=$6
  kubectl create serviceaccount "$sa" -n "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply -f - >/dev/null <<POD
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "$name", "namespace": "$ns", "labels": $labels},
 "spec": {"nodeName": "$node", "serviceAccountName": "$sa",
          "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]}}
POD
  # No kubelet here: the pod's IP is written as kubelet would (the status subresource).
  kubectl patch pod "$name" -n "$ns" --subresource=status --type=merge \
    -p "{\"status\": {\"podIP\": \"$ip\", \"podIPs\": [{\"ip\": \"$ip\"}]}}" >/dev/null
  echo "pod/$ns/$name on $node, $ip"
}
pod kube-system coredns-1 node-1 192.168.1.10 coredns '{"k8s-app": "kube-dns"}'
pod ingress-nginx controller-1 node-2 192.168.2.10 ingress-nginx '{"app.kubernetes.io/name": "ingress-nginx"}'
pod shop nginx-1 node-2 192.168.2.20 default '{"run": "nginx"}'
pod shop busybox-1 node-3 192.168.3.20 default '{"run": "busybox"}'
pod shop web-1 node-3 192.168.3.21 default '{"app": "web", "access": "true"}'
pod cache redis-1 node-3 192.168.3.30 default '{"app": "redis"}'
pod default curl-1 node-2 192.168.2.40 default '{"run": "curl"}'
pod cattle-system cattle-agent-1 node-2 192.168.2.50 cattle '{"app": "cattle-cluster-agent"}'

# The kind order alone would isolate pods for a moment on this first apply (a default deny
# before the allows); the plan bridges those flows instead (make-before-break), so every
# check holds in every state, and the plan says "Apply order: bridged".
step "Plan: what applying example-repo/ would do (exit code 1 = changes pending)"
headlines policy-reconciler plan example-repo

step "Apply in firewall-safe order"
if [ -n "$DATAPLANE" ]; then
  echo "Felix enforces it: node-1's SSH is probed every 100 ms, from node-2 (inside the"
  echo "cluster network) and from outside, before, during and after the apply."
  PROBES="$(mktemp)"
  python -m reconciler.localcluster.watch "${STATE[@]}" --to node-1 --port 22 --from node-2 --from outside \
    >"$PROBES" &
  WATCH=$!
  sleep 1
fi
headlines policy-reconciler apply example-repo
if [ -n "$DATAPLANE" ]; then
  sleep 2
  kill -INT "$WATCH" && wait "$WATCH"
  cat "$PROBES" && rm -f "$PROBES"
  echo "(node-2 is in 10.240.0.0/16, which allow-cluster-internal-ingress lets in: never cut."
  echo " Outside is not in admin-networks: SSH closes once node-1's host endpoint is enforced.)"
else
  echo "(Run as root to see Felix enforce this on real packets: local-cluster up --dataplane.)"
fi

step "Every ConnectivityCheck of example-repo/checks/ holds on the live cluster"
policy-reconciler plan example-repo -o json | python -c '
import json, sys
for c in json.load(sys.stdin)["checks"]:
    print(("holds  " if c["holds"] else "FAILS  ") + c["name"])'

step "A commit that cuts the nodes off from each other is refused, with the counterexample"
CUT="$(mktemp -d)"
cp -r example-repo/. "$CUT"
sed -i '/- 10.240.0.0\/16 # nodes/d' "$CUT/hosts/node-firewall.yaml"
echo "(the commit drops the node network from allow-cluster-internal-ingress: kubelet, etcd,"
echo " BGP and VXLAN between nodes would hit drop-other-ingress)"
printf '$ policy-reconciler apply %s   # exit code 2, nothing written\n' "$CUT"
rc=0; out="$(policy-reconciler apply "$CUT" 2>&1)" || rc=$?
printf '%s\n' "$out" | grep -A2 -E '^(Connectivity checks failing|Apply:)'
[ "$rc" -eq 2 ] || { echo "expected the apply to be refused (exit 2), got $rc"; exit 1; }
rm -rf "$CUT"
echo "(SSH and the API server from the admin networks cannot be cut this way: Calico's failsafe"
echo " ports let tcp/22 and tcp/6443 in before any policy, and the check admins-reach-every-node"
echo " says so by holding. Narrowing failsafes is FelixConfiguration, outside a policy repo.)"

step "What we manage, by our ApplySet label"
run kubectl get globalnetworkpolicies.crd.projectcalico.org,hostendpoints.crd.projectcalico.org \
  -l applyset.kubernetes.io/part-of

POLICY="$(kubectl get globalnetworkpolicies.crd.projectcalico.org -l applyset.kubernetes.io/part-of \
  -o jsonpath='{.items[0].metadata.name}')"
step "Someone edits $POLICY by hand (field manager kubectl-patch)"
run kubectl patch globalnetworkpolicies.crd.projectcalico.org "$POLICY" --type merge \
  -p '{"spec":{"order":999}}'

step "Plan names the drift and who made it"
run_plan policy-reconciler plan example-repo

step "Apply heals it"
run policy-reconciler apply example-repo

step "A node joins: the host endpoint template gives it an endpoint on the next run"
kubectl apply -f - >/dev/null <<'NODE'
{"apiVersion": "v1", "kind": "Node",
 "metadata": {"name": "node-4", "labels": {"kubernetes-host": "", "kubernetes-worker": ""}},
 "status": {"addresses": [{"type": "InternalIP", "address": "10.240.0.14"}]}}
NODE
echo "node/node-4 joined (InternalIP 10.240.0.14)"
run policy-reconciler apply example-repo

step "And now there is nothing to do (exit code 0)"
run policy-reconciler plan example-repo

printf '\nDone. The cluster keeps running: `export KUBECONFIG=%s`, and\n`policy-reconciler local-cluster down%s` stops it.\n' "$KUBECONFIG" "${DEMO_STATE_DIR:+ --state-dir $DEMO_STATE_DIR}"
