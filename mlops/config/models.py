"""Adding a model to the registry: `platform.yaml` `models:` and the `models:` of the tenants that train it.

The files are edited as text, one list at a time, so that their comments, order and layout stay as people wrote
them: a block list (`  - churn` lines) gets one more line in the same indentation, a flow list (`[churn, x]`)
one more item. Every edit is checked by reading the file back (the list grew by exactly the new model, nothing
else changed); a file whose `models:` has another shape is refused with the file's name, to be edited by hand.

`plan_model_addition` changes nothing: it returns the new texts after loading them, in a scratch copy of the
registry, with `load_registry` (the check of `mlops tenants validate`), so a registry that would not validate
is never written. `write_texts` writes them.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.config.tenants import Registry, load_registry
from mlops.errors import ConfigError, MlopsError
from mlops.naming import MODEL_MAX, SLUG, SLUG_HINT, Names

_BLOCK_ITEM = re.compile(r"^(?P<indent>[ \t]*)-[ \t]+(?P<value>[^#\n]*?)[ \t]*(?:#.*)?$")
_FLOW = re.compile(r"^(?P<head>models:[ \t]*\[)(?P<items>[^\]\n]*)(?P<tail>\].*)$")


def check_model_name(name: str) -> str:
    """A model name as every resource name needs it, or one line saying what is wrong."""
    if not SLUG.match(name or ""):
        raise ConfigError(f"model name '{name}' is not valid: {SLUG_HINT} (e.g. fraud-detection)")
    if len(name) > MODEL_MAX:
        raise ConfigError(f"model name '{name}' is {len(name)} characters, at most {MODEL_MAX} are allowed",
                          "it is part of the pipeline, endpoint and model package group names")
    return name


def append_to_models(text: str, model: str, path: Path | str) -> str:
    """`text` with `model` appended to its top-level `models:` list (block or flow style)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(r"^models:", line)), None)
    if start is None:
        raise ConfigError(f"{path}: no top-level `models:` list to add '{model}' to", "add the model by hand")
    flow = _FLOW.match(lines[start].rstrip("\n"))
    if flow:
        items = flow["items"].strip()
        lines[start] = f"{flow['head']}{items + ', ' if items else ''}{model}{flow['tail']}" + ("\n" if lines[start].endswith("\n") else "")
    elif re.match(r"^models:[ \t]*(#.*)?$", lines[start].rstrip("\n")):
        last, indent = start, None
        for i in range(start + 1, len(lines)):
            stripped = lines[i].strip()
            if not stripped or stripped.startswith("#"):
                continue
            item = _BLOCK_ITEM.match(lines[i].rstrip("\n"))
            if item is None or (indent is not None and item["indent"] != indent):
                break
            indent, last = item["indent"], i
        if indent is None:
            raise ConfigError(f"{path}: `models:` is not a list of `- name` lines", "add the model by hand")
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, f"{indent}- {model}\n")
    else:
        raise ConfigError(f"{path}: `models:` is neither a `- name` list nor `[a, b]`", "add the model by hand")
    edited = "".join(lines)
    _check_edit(text, edited, model, path)
    return edited


def _check_edit(before: str, after: str, model: str, path: Path | str) -> None:
    """The edit added `model` at the end of `models` and changed nothing else."""
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    expected = {**old, "models": [*old["models"], model]} if isinstance(old, dict) and isinstance(old.get("models"), list) else None
    if expected is None or new != expected:
        raise ConfigError(f"{path}: could not add '{model}' to `models:` without changing anything else", "add it by hand")


@dataclass
class ModelAddition:
    """What adding a model changes: the new text of each file, and the registry they make."""

    model: str
    platform_added: bool
    tenants: list[str]
    texts: dict[Path, str] = field(default_factory=dict)
    registry: Registry | None = None

    def names(self, account_id: str = "123456789012") -> dict[str, Any]:
        """The AWS names the model gets: its ECR repository, and per tenant its pipeline, model package group and
        data prefix (`mlops names` lists the rest, endpoints included)."""
        assert self.registry is not None
        naming: Names = self.registry.names(account_id)
        return {
            "ecr_repository": naming.ecr_repository(self.model),
            "tenants": {t: {"pipeline": naming.pipeline(t, self.model), "model_package_group": naming.model_package_group(t, self.model),
                            "data_prefix": f"s3://{naming.tenant_bucket(t)}/{naming.data_prefix(self.model)}"}
                        for t in sorted(t for t, tenant in self.registry.tenants.items() if self.model in tenant.models)},
        }


def plan_model_addition(platform_file: Path, tenants_dir: Path, model: str,
                        tenant_ids: list[str] | None, all_tenants: bool) -> ModelAddition:
    """The edits that add `model` to the platform and to the given tenants (or every tenant), validated."""
    check_model_name(model)
    registry = load_registry(platform_file, tenants_dir)  # a registry that is already broken is fixed first
    if all_tenants:
        targets = sorted(registry.tenants)
    else:
        targets = list(dict.fromkeys(tenant_ids or []))
        for tenant_id in targets:
            registry.tenant(tenant_id)  # an unknown id is one line listing the known ones
    texts: dict[Path, str] = {}
    platform_added = model not in registry.platform.models
    if platform_added:
        texts[platform_file] = append_to_models(platform_file.read_text(encoding="utf-8"), model, platform_file)
    tenants = [t for t in targets if model not in registry.tenants[t].models]
    for tenant_id in tenants:
        path = registry.files[tenant_id]
        texts[path] = append_to_models(path.read_text(encoding="utf-8"), model, path)
    if not texts:
        trained = ", ".join(t for t, tenant in sorted(registry.tenants.items()) if model in tenant.models) or "no tenant"
        raise MlopsError(f"model '{model}' is already in {platform_file.name}; trained by {trained}: nothing to change",
                         "name tenants to add it to with --tenants, or see `mlops models list`")
    addition = ModelAddition(model, platform_added, tenants, texts)
    addition.registry = _validate(platform_file, tenants_dir, texts)
    return addition


def _validate(platform_file: Path, tenants_dir: Path, texts: dict[Path, str]) -> Registry:
    """Load the edited registry from a scratch copy (the check of `mlops tenants validate`); problems name the
    real files."""
    with tempfile.TemporaryDirectory(prefix="mlops-registry-") as scratch:
        copy = Path(scratch)
        shutil.copy(platform_file, copy / "platform.yaml")
        shutil.copytree(tenants_dir, copy / "tenants")
        places = {platform_file: copy / "platform.yaml"} | {path: copy / "tenants" / path.relative_to(tenants_dir) for path in texts
                                                            if path != platform_file}
        for path, text in texts.items():
            places[path].write_text(text, encoding="utf-8")
        try:
            registry = load_registry(copy / "platform.yaml", copy / "tenants")
        except ConfigError as exc:
            def real(line: str) -> str:
                return line.replace(str(copy / "tenants"), str(tenants_dir)).replace(str(copy / "platform.yaml"), str(platform_file))
            raise ConfigError(real(exc.message), "nothing was changed", [real(p) for p in exc.problems]) from None
    registry.files = {tid: tenants_dir / path.relative_to(copy / "tenants") for tid, path in registry.files.items()}
    return registry


def write_texts(texts: dict[Path, str]) -> None:
    """Write the edited files (each through a temporary file, so a crash never leaves half a file)."""
    for path, text in texts.items():
        partial = path.with_name(f".{path.name}.new")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
