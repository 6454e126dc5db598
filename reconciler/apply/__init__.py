"""Execute a Plan against the cluster: dry-run, ordered server-side apply, guarded prune."""

from reconciler.apply.executor import Inventories, Target, execute

__all__ = ["Inventories", "Target", "execute"]
