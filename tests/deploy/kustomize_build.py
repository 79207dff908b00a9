"""`kustomize build` for the features deploy/k8s uses, so overlays render without the binary.

Supported, as kustomize does them: `resources` (files, and folders holding a kustomization),
`namespace` (set on every namespaced object), `images` (`newName`, `newTag`, `digest`),
`patches` with inline JSON 6902 operations (`add`, `replace`, `remove`, `test`) and a
`target` of kind and name, and `configMapGenerator` with `files` and `literals` when the name
suffix hash is disabled. Anything else in a kustomization is refused rather than ignored, so
a new feature in the deploy files fails these tests until it is reproduced here too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_KEYS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "images", "patches", "configMapGenerator"}
)
#: Kinds without a namespace among those deploy/k8s uses.
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})

Manifest = dict[str, Any]


class KustomizeError(Exception):
    """A kustomization this builder cannot render the way kustomize would."""


def build(directory: Path) -> list[Manifest]:
    """The manifests `kustomize build <directory>` prints, in order."""
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text())
    unknown = set(spec) - KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    manifests: list[Manifest] = []
    for resource in spec.get("resources", []):
        target = (directory / resource).resolve()
        if target.is_dir():
            manifests.extend(build(target))
        else:
            manifests.extend(doc for doc in yaml.safe_load_all(target.read_text()) if doc)
    manifests.extend(_config_maps(directory, spec.get("configMapGenerator", [])))
    for patch in spec.get("patches", []):
        _apply_patch(manifests, patch, path)
    for image in spec.get("images", []):
        _set_image(manifests, image)
    if "namespace" in spec:
        for manifest in manifests:
            if manifest["kind"] not in CLUSTER_SCOPED:
                manifest.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return manifests


def _config_maps(directory: Path, generators: list[dict[str, Any]]) -> list[Manifest]:
    maps = []
    for generator in generators:
        unknown = set(generator) - {"name", "files", "literals", "options"}
        options = generator.get("options", {})
        if unknown or options != {"disableNameSuffixHash": True}:
            raise KustomizeError(
                f"configMapGenerator {generator.get('name')}: only files and literals, "
                "with disableNameSuffixHash: true"
            )
        data: dict[str, str] = {}
        for entry in generator.get("files", []):
            key, _, source = entry.partition("=")
            file = directory / (source or key)
            data[Path(key).name] = file.read_text()
        for literal in generator.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    return maps


def _apply_patch(manifests: list[Manifest], patch: dict[str, Any], origin: Path) -> None:
    if set(patch) != {"target", "patch"} or set(patch["target"]) - {"kind", "name"}:
        raise KustomizeError(f"{origin}: only inline JSON 6902 patches with a kind/name target")
    target = patch["target"]
    matched = [
        m
        for m in manifests
        if m["kind"] == target.get("kind", m["kind"])
        and m["metadata"]["name"] == target.get("name", m["metadata"]["name"])
    ]
    if not matched:
        raise KustomizeError(f"{origin}: no resource matches the patch target {target}")
    operations = yaml.safe_load(patch["patch"])
    for manifest in matched:
        for operation in operations:
            _json_patch(manifest, operation, origin)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"not a JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _json_patch(document: Manifest, operation: dict[str, Any], origin: Path) -> None:
    op, parts = operation["op"], _pointer(operation["path"])
    parent: Any = document
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError) as exc:
            raise KustomizeError(f"{origin}: {operation['path']} does not exist") from exc
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, value)
            return
        if index >= len(parent):
            raise KustomizeError(f"{origin}: {operation['path']} does not exist")
        current = parent[index]
    else:
        if op == "add":
            parent[last] = value
            return
        if last not in parent:
            raise KustomizeError(f"{origin}: {operation['path']} does not exist")
        current = parent[last]
    if op == "test":
        if current != value:
            raise KustomizeError(f"{origin}: test of {operation['path']}: {current!r} != {value!r}")
    elif op == "replace":
        parent[index if isinstance(parent, list) else last] = value
    elif op == "remove":
        del parent[index if isinstance(parent, list) else last]
    else:
        raise KustomizeError(f"{origin}: unsupported JSON patch operation {op!r}")


def pod_spec(manifest: Manifest) -> dict[str, Any] | None:
    """The pod template's spec of a workload, None for other kinds."""
    if manifest["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
        return spec
    return None


def _set_image(manifests: list[Manifest], image: dict[str, Any]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise KustomizeError(f"images: unsupported fields {sorted(unknown)}")
    for manifest in manifests:
        spec = pod_spec(manifest)
        if spec is None:
            continue
        for container in spec.get("initContainers", []) + spec["containers"]:
            name, tag = _split_image(container["image"])
            if name != image["name"]:
                continue
            new_name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new_name}@{image['digest']}"
            else:
                new_tag = image.get("newTag", tag)
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _split_image(reference: str) -> tuple[str, str | None]:
    name, _, digest = reference.partition("@")
    if digest:
        return name, None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, None
