"""Names of generated objects: readable when they fit, stable and unique when they do not."""

from __future__ import annotations

import hashlib
import re

from reconciler.manifests import checks as c

MAX_NAME = 253  # a DNS-1123 subdomain, what HostEndpoint names are
HASH_LENGTH = 10  # hex digits of sha256: 40 bits, collisions need ~1M names to be likely
_NOT_LABEL = re.compile(r"[^a-z0-9]+")


def joined_name(*parts: str, limit: int = MAX_NAME) -> str:
    """`parts` joined by '-' when that is a valid name of at most `limit` characters; else a
    cleaned, shortened form ending in a hash of the full name (same input, same name)."""
    name = "-".join(parts)
    if len(name) <= limit and c.dns_subdomain(name) is None:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LENGTH]
    keep = limit - HASH_LENGTH - 1
    clean = _NOT_LABEL.sub("-", name.lower())[:keep].strip("-")
    return f"{clean}-{digest}" if clean else digest
