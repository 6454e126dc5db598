"""Execute a Plan against the cluster: dry-run, ordered server-side apply, guarded prune."""

from reconciler.apply.executor import Interrupted, Inventories, Progress, Target, execute

__all__ = ["Interrupted", "Inventories", "Progress", "Target", "execute"]
