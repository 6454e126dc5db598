"""The only code that talks to kube-apiserver.

The official client reads the kubeconfig (TLS, tokens, exec plugins, proxy) and makes
the connection pool; requests go through that pool by `transport.py`'s thin path, not
the client's generated one. Raw JSON in and out (model objects are slow at scale,
kubernetes-client/python#1921), typed errors, a request counter by verb, and cached
discovery. Everything above works on plain
dicts and `ResourceType`s.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from reconciler import FIELD_MANAGER, __version__
from reconciler.cluster import errors
from reconciler.cluster.transport import Transport, encode

USER_AGENT = f"policy-reconciler/{__version__}"
PAGE_SIZE = 500
# Keep-alive connections kept per host: the executor's workers plus the controller's
# watches, so that concurrent writes reuse their TLS connections, never open new ones.
POOL_SIZE = 32
# The client reloads the kubeconfig's credentials before every request (its refresh
# hook re-sets the host, which re-reads the proxy environment): about a millisecond of
# CPU each, the biggest cost of a request of ours. Tokens live minutes to hours, and the
# loader renews an expiring one 5 minutes early: once in this many seconds is enough.
REFRESH_EVERY = 30.0
JSONDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        tail = f"/{urllib.parse.quote(name, safe='')}" if name else ""
        return f"{base}{ns}/{self.plural}{tail}"


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach the cluster: from a kubeconfig (and context) or in-cluster."""

    kubeconfig: str = ""
    context: str = ""
    user_agent: str = USER_AGENT
    # Act as this user (`kubectl --as`), e.g. "system:serviceaccount:<ns>:<name>": the API
    # server then authorizes every request as that user (the caller needs `impersonate`).
    impersonate: str = ""


@dataclass(frozen=True, slots=True)
class Payload:
    """An object to apply, serialised once: its dry-run and its write send the same bytes."""

    name: str
    namespace: str
    data: bytes

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Payload:
        meta = body["metadata"]
        return cls(meta["name"], meta.get("namespace", ""), encode(body))


class Cluster:
    """Raw-JSON access to one API server. Thread-safe for the counters."""

    def __init__(self, api: k8s.ApiClient, *, name: str = "") -> None:
        self._api = api
        self._transport = Transport(api)
        self.name = name
        self.requests: Counter[str] = Counter()
        self.responses: Counter[tuple[str, str]] = Counter()  # (verb, HTTP code or "error")
        self._lock = threading.Lock()
        self._discovery: dict[str, dict[str, ResourceType] | None] = {}

    @classmethod
    def connect(cls, conn: Connection) -> Cluster:
        configuration = k8s.Configuration()
        name = _load_config(conn, configuration)
        configuration.connection_pool_maxsize = POOL_SIZE
        if configuration.refresh_api_key_hook is not None:
            configuration.refresh_api_key_hook = _throttled(configuration.refresh_api_key_hook)
        api = k8s.ApiClient(configuration)
        api.user_agent = conn.user_agent
        if conn.impersonate:
            api.set_default_header("Impersonate-User", conn.impersonate)
            name = f"{name} as {conn.impersonate}"
        return cls(api, name=name)

    # -- transport -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        query: Mapping[str, str] | None = None,
        body: object = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = 60,
    ) -> JSONDict:
        """One HTTP request; returns the decoded JSON body or raises a typed error.

        `body` is JSON-encoded unless it is `bytes` already (encoded once by a caller that
        sends it more than once)."""
        data = self._exchange(
            method,
            path,
            verb=verb,
            query=query,
            body=body,
            content_type=content_type,
            timeout=timeout,
        )
        return json.loads(data) if data else {}

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        query: Mapping[str, str] | str | None = None,
        body: object = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = 60,
    ) -> bytes:
        """One request's raw answer, or its typed error."""
        resp = self._send(
            method,
            path,
            verb=verb,
            query=query,
            body=body,
            content_type=content_type,
            timeout=timeout,
        )
        if resp.status >= 400:
            raise errors.from_response(resp.status, resp.data, what=f"{method} {path}")
        return resp.data

    def watch(self, path: str, *, query: Mapping[str, str], timeout: float) -> WatchStream:
        """Open a watch; iterate it for events, `close()` it from any thread to end it."""
        resp = self._send(
            "GET",
            path,
            verb="watch",
            query=query,
            body=None,
            content_type="application/json",
            timeout=(10, timeout + 5),
            stream=True,
        )
        if resp.status >= 400:
            raise errors.from_response(resp.status, resp.read(), what=f"WATCH {path}")
        return WatchStream(resp, what=f"WATCH {path}")

    def _send(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        query: Mapping[str, str] | str | None,
        body: object,
        content_type: str,
        timeout: float | tuple[float, float],
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        self._count(verb)
        data = body if isinstance(body, bytes) or body is None else encode(body)
        try:
            resp = self._transport.send(
                method,
                path,
                query=query,
                body=data,
                content_type=content_type,
                timeout=timeout,
                stream=stream,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # No HTTP answer: refused, reset, TLS failure, timeout (after the pool's retries).
            self._answered(verb, "error")
            raise errors.Unreachable(f"{method} {path}: {exc}") from exc
        self._answered(verb, str(resp.status))
        return resp

    def _count(self, verb: str) -> None:
        with self._lock:
            self.requests[verb] += 1

    def _answered(self, verb: str, code: str) -> None:
        with self._lock:
            self.responses[verb, code] += 1

    def response_counts(self) -> dict[tuple[str, str], int]:
        """Requests by (verb, HTTP status code or "error" when none came back)."""
        with self._lock:
            return dict(self.responses)

    def request_counts(self) -> dict[str, int]:
        """A consistent copy of `requests`, safe to read while other threads send."""
        with self._lock:
            return dict(self.requests)

    # -- discovery -------------------------------------------------------------------

    def resources(self, group_version: str) -> dict[str, ResourceType] | None:
        """Kinds served under group/version, or None when it is not served. Cached."""
        if group_version not in self._discovery:
            self._discovery[group_version] = self._discover(group_version)
        return self._discovery[group_version]

    def _discover(self, group_version: str) -> dict[str, ResourceType] | None:
        group, _, version = group_version.rpartition("/")
        path = f"/apis/{group_version}" if group else f"/api/{version}"
        try:
            doc = self.request("GET", path, verb="discovery")
        except errors.NotFound:
            return None
        return {
            r["kind"]: ResourceType(group, version, r["kind"], r["name"], r["namespaced"])
            for r in doc.get("resources", [])
            if "/" not in r["name"]  # skip subresources like status
        }

    # -- verbs -----------------------------------------------------------------------

    def list(
        self,
        rtype: ResourceType,
        *,
        label_selector: str = "",
        namespace: str = "",
        page_size: int = PAGE_SIZE,
    ) -> list[JSONDict]:
        """Every object of a type (paginated), raw JSON with apiVersion/kind filled in."""
        items: list[JSONDict] = []
        query = {"limit": str(page_size)}
        if label_selector:
            query["labelSelector"] = label_selector
        while True:
            page = self.request("GET", rtype.path(namespace), verb="list", query=query)
            items.extend(_typed(i, rtype) for i in page.get("items", []))
            token = page.get("metadata", {}).get("continue")
            if not token:
                return items
            query = {**query, "continue": token}

    def get(self, rtype: ResourceType, name: str, namespace: str = "") -> JSONDict | None:
        try:
            return self.request("GET", rtype.path(namespace, name), verb="get")
        except errors.NotFound:
            return None

    def apply(
        self,
        rtype: ResourceType,
        body: Mapping[str, Any] | Payload,
        *,
        force: bool = False,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> JSONDict:
        """Server-side apply of one object; returns the object as the server has it."""
        payload = body if isinstance(body, Payload) else Payload.of(body)
        answer: JSONDict = json.loads(self._apply(rtype, payload, force, dry_run, field_manager))
        return answer

    def submit(
        self,
        rtype: ResourceType,
        payload: Payload,
        *,
        force: bool = False,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        """Server-side apply when only acceptance matters (the executor's dry-runs and
        writes): a typed error when refused, and the object it answers with is not decoded."""
        self._apply(rtype, payload, force, dry_run, field_manager)

    def _apply(
        self, rtype: ResourceType, payload: Payload, force: bool, dry_run: bool, manager: str
    ) -> bytes:
        query = _apply_query(manager, force, dry_run)
        return self._exchange(
            "PATCH",
            rtype.path(payload.namespace, payload.name),
            verb="dry-run" if dry_run else "apply",
            query=query,
            body=payload.data,
            content_type="application/apply-patch+yaml",  # JSON is valid YAML
        )

    def delete(
        self,
        rtype: ResourceType,
        name: str,
        namespace: str = "",
        *,
        uid: str = "",
        dry_run: bool = False,
    ) -> bool:
        """Delete; with `uid`, only that exact object (not a namesake created since)."""
        body: JSONDict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            body["preconditions"] = {"uid": uid}
        query = {"dryRun": "All"} if dry_run else {}
        try:
            self.request(
                "DELETE", rtype.path(namespace, name), verb="delete", query=query, body=body
            )
        except errors.NotFound:
            return False
        return True

    def replace(self, rtype: ResourceType, body: Mapping[str, Any]) -> JSONDict:
        """PUT: optimistic concurrency on metadata.resourceVersion (Conflict when stale)."""
        meta = body["metadata"]
        path = rtype.path(meta.get("namespace", ""), meta["name"])
        return self.request("PUT", path, verb="update", body=dict(body))

    def create(self, rtype: ResourceType, body: Mapping[str, Any]) -> JSONDict:
        namespace = body["metadata"].get("namespace", "")
        return self.request("POST", rtype.path(namespace), verb="create", body=dict(body))

    def connections_opened(self) -> int:
        """TCP+TLS connections opened to the API server so far (kept alive and reused)."""
        return self._transport.connections_opened()

    def close(self) -> None:
        self._transport.close()


class WatchStream:
    """One open watch response: JSON events line by line; closable from another thread."""

    def __init__(self, response: Any, *, what: str) -> None:
        self._response = response
        self._what = what

    def __iter__(self) -> Iterator[JSONDict]:
        try:
            for line in self._response:  # urllib3 splits the chunked body into lines
                if line.strip():
                    yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise errors.Unreachable(f"{self._what}: {exc}") from exc

    def close(self) -> None:
        """Idempotent; unblocks a read in progress in another thread."""
        with contextlib.suppress(ValueError, RuntimeError, OSError):  # closed or released
            self._response.shutdown()
        self._response.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@functools.cache
def _apply_query(manager: str, force: bool, dry_run: bool) -> str:
    """An apply's query string, encoded once per combination (there are four)."""
    query = {"fieldManager": manager, "force": "true" if force else "false"}
    if dry_run:
        query["dryRun"] = "All"
    return urllib.parse.urlencode(query)


def _typed(item: JSONDict, rtype: ResourceType) -> JSONDict:
    """LIST items omit apiVersion/kind; put them back so bodies are self-describing.

    Set in place: the item was just decoded and nothing else holds it.
    """
    item["apiVersion"] = rtype.api_version
    item["kind"] = rtype.kind
    return item


def _throttled(hook: Callable[[Any], None], every: float = REFRESH_EVERY) -> Callable[[Any], None]:
    """`hook` runs at most once per `every` seconds (the first call always runs it).

    The kubeconfig loader's hook installs a fresh hook of its own each time it runs:
    that one becomes the hook throttled, and the throttle stays in place."""
    lock = threading.Lock()
    last = [-every]
    inner = [hook]

    def refresh(configuration: Any) -> None:
        with lock:
            now = time.monotonic()
            if now - last[0] < every:
                return
            last[0] = now
            inner[0](configuration)
            if configuration.refresh_api_key_hook is not refresh:
                inner[0] = configuration.refresh_api_key_hook
                configuration.refresh_api_key_hook = refresh

    return refresh


# What the client raises for a missing, unreadable or malformed kubeconfig or context.
_CONFIG_ERRORS = (
    k8s_config.ConfigException,
    OSError,
    yaml.YAMLError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


def _load_config(conn: Connection, configuration: k8s.Configuration) -> str:
    """Fill `configuration`; returns a display name for the target (the context).

    Raises our `ConfigError`, so that no caller needs to know the client's exceptions."""
    try:
        return _load(conn, configuration)
    except _CONFIG_ERRORS as exc:
        where = f"--kubeconfig {conn.kubeconfig}" if conn.kubeconfig else "default kubeconfig"
        context = f", --context {conn.context}" if conn.context else ""
        raise errors.ConfigError(f"cannot use the kubeconfig: {exc} ({where}{context})") from exc


def _load(conn: Connection, configuration: k8s.Configuration) -> str:
    if not conn.kubeconfig and k8s_config.incluster_config.SERVICE_HOST_ENV_NAME in os.environ:
        k8s_config.load_incluster_config(client_configuration=configuration)
        return "in-cluster"
    k8s_config.load_kube_config(
        config_file=conn.kubeconfig or None,
        context=conn.context or None,
        client_configuration=configuration,
    )
    _, active = k8s_config.list_kube_config_contexts(config_file=conn.kubeconfig or None)
    return conn.context or str(active.get("name", ""))


CORE_V1 = "v1"
CONFIGMAPS = ResourceType("", "v1", "ConfigMap", "configmaps", True)
EVENTS = ResourceType("", "v1", "Event", "events", True)
NODES = ResourceType("", "v1", "Node", "nodes", False)
NAMESPACES = ResourceType("", "v1", "Namespace", "namespaces", False)
LEASES = ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True)
