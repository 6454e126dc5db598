"""policy-reconciler: GitOps for Kubernetes firewall policy."""

__version__ = "0.1.0"
FIELD_MANAGER = "policy-reconciler"
