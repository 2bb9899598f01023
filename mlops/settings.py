"""Where things are: read once from environment variables, with documented defaults.

| Variable | Default | Meaning |
| --- | --- | --- |
| `MLOPS_ROOT` | the nearest folder upwards holding `platform.yaml`, else the current folder | the ml-ops checkout |
| `MLOPS_PLATFORM_FILE` | `$MLOPS_ROOT/platform.yaml` | project name, region, models and tiers |
| `MLOPS_TENANTS_DIR` | `$MLOPS_ROOT/tenants` | the tenant registry, one YAML file per tenant |
| `MLOPS_STATE_DIR` | `$MLOPS_ROOT/.mlops` | local state: the local AWS, its Terraform state, demo output |
| `MLOPS_TF_PLUGIN_DIR` | where Terraform looks (`terraform.find_aws_provider`) | a provider mirror |
| `MLOPS_CACHE_DIR` | `$MLOPS_ROOT/.mlops/cache` | built once, reused by every state folder: the Lambda dependencies layer |

Nothing here imports boto3: `mlops --help` must stay fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _find_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        if (folder / "platform.yaml").is_file():
            return folder
    return start


@dataclass(frozen=True)
class Settings:
    """Paths and switches, resolved from the environment."""

    root: Path
    platform_file: Path
    tenants_dir: Path
    state_dir: Path
    tf_plugin_dir: Path | None
    cache_dir: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Resolve every setting from `env` (default: the process environment)."""
        env = dict(os.environ if env is None else env)
        root = Path(env["MLOPS_ROOT"]) if env.get("MLOPS_ROOT") else _find_root(Path.cwd())
        root = root.resolve()
        plugin = env.get("MLOPS_TF_PLUGIN_DIR") or None
        return cls(
            root=root,
            platform_file=Path(env.get("MLOPS_PLATFORM_FILE") or root / "platform.yaml"),
            tenants_dir=Path(env.get("MLOPS_TENANTS_DIR") or root / "tenants"),
            state_dir=Path(env.get("MLOPS_STATE_DIR") or root / ".mlops"),
            tf_plugin_dir=Path(plugin) if plugin else None,
            cache_dir=Path(env.get("MLOPS_CACHE_DIR") or root / ".mlops" / "cache"),
        )

    @property
    def terraform_dir(self) -> Path:
        """The Terraform root of this checkout."""
        return self.root / "terraform"
