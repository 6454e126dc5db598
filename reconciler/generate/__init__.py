"""generate: templates x live Nodes/Namespaces -> more Resources (pure).

    expand(templates, nodes=[Node], namespaces=[Namespace], auto=None) -> Expanded
    merge(files, generated) -> (resources, collision errors)

Templates are parsed and checked by the loader (`manifests.templates`); `observe` reads
the inventory they need (one LIST of Nodes and/or Namespaces) and `pipeline` expands them.
"""

from reconciler.generate.autohep import AutoHostEndpoints, auto_host_endpoints
from reconciler.generate.common import TEMPLATE_ANNOTATION
from reconciler.generate.expand import Expanded, expand, merge, unexpanded
from reconciler.generate.inventory import (
    Namespace,
    Needs,
    Node,
    namespace_from_api,
    needs,
    node_from_api,
)
from reconciler.generate.naming import joined_name

__all__ = [
    "TEMPLATE_ANNOTATION",
    "AutoHostEndpoints",
    "Expanded",
    "Namespace",
    "Needs",
    "Node",
    "auto_host_endpoints",
    "expand",
    "joined_name",
    "merge",
    "namespace_from_api",
    "needs",
    "node_from_api",
    "unexpanded",
]
