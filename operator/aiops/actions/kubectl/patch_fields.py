"""Which fields a `kubectl patch` step may change: an allowlist of paths, not a blocklist.

`patch` is the most general verb the action allows; without this, one patch could do what the
verb allowlist refuses elsewhere: give a pod template another ServiceAccount (`set
serviceaccount`), copy a Secret into its env (`set env --from=secret`), or mount a volume.
A patch may touch only labels and annotations, the scaling and rollout knobs of a workload,
its containers' image and resources (containers named, as a strategic merge patch names
them), and a ConfigMap's data. Each path below is a tuple of keys; `*` is any one key.
"""

from __future__ import annotations

from typing import Any

_ANY = "*"
_ALLOWED: tuple[tuple[str, ...], ...] = (
    ("metadata", "labels", _ANY),
    ("metadata", "annotations", _ANY),
    ("data", _ANY),  # ConfigMaps
    ("spec", "replicas"),
    ("spec", "paused"),
    ("spec", "minReadySeconds"),
    ("spec", "progressDeadlineSeconds"),
    ("spec", "parallelism"),  # Jobs
    ("spec", "suspend"),  # Jobs, CronJobs
    ("spec", "minAvailable"),  # PodDisruptionBudgets
    ("spec", "maxUnavailable"),
    ("spec", "minReplicas"),  # HorizontalPodAutoscalers
    ("spec", "maxReplicas"),
    ("spec", "template", "metadata", "annotations", _ANY),  # e.g. a rollout restart
)
# Inside spec.template.spec.containers[] (and the same path of a Pod: spec.containers[]).
_CONTAINER_FIELDS = frozenset({"name", "image", "resources"})
_CONTAINER_LISTS = (("spec", "template", "spec", "containers"), ("spec", "containers"))
_JSON_PATCH_OPS = frozenset({"add", "replace", "remove", "test"})
ALLOWED_SUMMARY = (
    "metadata.labels/annotations, data (ConfigMaps), spec.replicas, spec.paused, "
    "spec.minReadySeconds, spec.progressDeadlineSeconds, spec.parallelism, spec.suspend, "
    "spec.minAvailable/maxUnavailable, spec.minReplicas/maxReplicas, "
    "spec.template.metadata.annotations, and a container's image and resources"
)


def patch_problem(doc: Any) -> str | None:
    """Why the parsed patch (a strategic/merge object, or a JSON patch list) changes a field
    outside the allowlist; None when every field it touches is allowed."""
    bad = sorted(set(_json_patch_paths(doc) if isinstance(doc, list) else _object_paths(doc)))
    if not bad:
        return None
    return (
        f"changes {', '.join(bad[:5])}{' and more' if len(bad) > 5 else ''}, which a "
        f"patch step may not touch (allowed: {ALLOWED_SUMMARY})"
    )


def _allowed(path: tuple[str, ...]) -> bool:
    for pattern in _ALLOWED:
        if len(pattern) == len(path) and all(
            p in (_ANY, k) for p, k in zip(pattern, path, strict=True)
        ):
            return True
    return False


def _object_paths(doc: Any, path: tuple[str, ...] = ()) -> list[str]:
    """The disallowed paths a merge-style patch writes (every leaf, and every container
    field outside image and resources)."""
    if not path and doc == {}:
        return []  # an empty patch changes nothing
    if path in _CONTAINER_LISTS:
        return _container_paths(doc, path)
    if isinstance(doc, dict) and doc and not _allowed(path):
        return [p for key, value in doc.items() for p in _object_paths(value, (*path, str(key)))]
    if _allowed(path):
        return []
    # A leaf (or an empty object, a list, a null that deletes) outside the allowlist.
    return [".".join(path) or "the whole object"]


def _container_paths(doc: Any, path: tuple[str, ...]) -> list[str]:
    where = ".".join(path)
    if not isinstance(doc, list):
        return [where]
    bad: list[str] = []
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            bad.append(f"{where}[] (each container is named)")
            continue
        bad += [f"{where}[{item['name']}].{k}" for k in item if k not in _CONTAINER_FIELDS]
    return bad


def _json_patch_paths(ops: list[Any]) -> list[str]:
    """The disallowed paths of a JSON patch (RFC 6902): only add/replace/remove/test, each
    on an allowed path (`move` and `copy` read from elsewhere)."""
    bad: list[str] = []
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in _JSON_PATCH_OPS:
            bad.append(f"op {op.get('op') if isinstance(op, dict) else op!r}")
            continue
        pointer = op.get("path")
        if not isinstance(pointer, str) or not pointer.startswith("/"):
            bad.append(f"path {pointer!r}")
            continue
        keys = tuple(k.replace("~1", "/").replace("~0", "~") for k in pointer[1:].split("/"))
        if _allowed(keys) or _container_pointer(keys):
            continue
        bad.append(pointer)
    return bad


def _container_pointer(keys: tuple[str, ...]) -> bool:
    """`/spec/template/spec/containers/0/image` (or resources/...): a container's image or
    resources, by index."""
    for prefix in _CONTAINER_LISTS:
        n = len(prefix)
        if (
            keys[:n] == prefix
            and len(keys) > n + 1
            and keys[n].isdigit()
            and keys[n + 1] in _CONTAINER_FIELDS - {"name"}
        ):
            return True
    return False
