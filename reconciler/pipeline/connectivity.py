"""What `connectivity` commands read: a repo directory rendered over inventory facts.

Kept out of the pure connectivity package: this module touches the file system (and,
in online mode, the cluster through reconciler.cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler import generate
from reconciler.connectivity import Facts, Flavour, World, build_world
from reconciler.manifests import load_dir
from reconciler.model import Resource, Severity
from reconciler.observe.connectivity import unmanaged


class InputError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rendered:
    resources: tuple[Resource, ...]
    auto: generate.AutoHostEndpoints | None
    notes: tuple[str, ...]


def render_repo(path: Path, facts: Facts) -> Rendered:
    """The repo's objects, templates expanded over the facts; errors raise InputError."""
    loaded = load_dir(path)
    errors = [f for f in loaded.findings if f.severity is Severity.ERROR]
    if errors:
        raise InputError("\n".join(str(f) for f in errors))
    kcc = next(
        (
            r
            for r in loaded.resources
            if r.ref.kind == "KubeControllersConfiguration" and r.ref.name == "default"
        ),
        None,
    )
    auto = (
        generate.auto_host_endpoints(kcc.body, source=f"{kcc.ref} at {kcc.origin}") if kcc else None
    )
    expanded = generate.expand(
        loaded.templates, nodes=facts.nodes, namespaces=facts.namespaces, auto=auto
    )
    resources, clashes = generate.merge(loaded.resources, expanded.resources)
    problems = [f for f in (*expanded.findings, *clashes) if f.severity is Severity.ERROR]
    if problems:
        raise InputError("\n".join(str(f) for f in problems))
    notes = (
        []
        if kcc
        else [
            "no KubeControllersConfiguration in the repository: no automatic host endpoints assumed"
        ]
    )
    return Rendered(resources, auto, tuple(notes))


def world_of(path: Path, facts: Facts, *, flavour: Flavour, live: Sequence[Resource] = ()) -> World:
    """The repo rendered over the facts, plus the live objects it does not manage."""
    rendered = render_repo(path, facts)
    extra = unmanaged(live, rendered.resources)
    world = build_world((*rendered.resources, *extra), facts, flavour=flavour, auto=rendered.auto)
    return World(
        policies=world.policies,
        tiers=world.tiers,
        pods=world.pods,
        hosts=world.hosts,
        sets=world.sets,
        nodes=world.nodes,
        flavour=world.flavour,
        notes=(*world.notes, *rendered.notes),
    )
