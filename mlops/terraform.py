"""A thin layer over python-terraform: one working folder and one state file per environment.

For an environment (`local`, `test-…`, later a real account) everything Terraform writes lives under
`$MLOPS_STATE_DIR/<environment>/terraform/`: a copy of the repository's `terraform/` configuration (so the
provider lock file and `.terraform/` never land in the checkout and two environments never race on them),
`TF_DATA_DIR`, the state file, a CLI configuration and the log of the last command. When
`MLOPS_TF_PLUGIN_DIR` names a provider mirror, the CLI configuration installs `hashicorp/aws` from it
(`filesystem_mirror`), so nothing is downloaded. Failures become `MlopsError` with Terraform's last
meaningful error line and the log's path.

python-terraform passes the process environment to Terraform; `_environment` adds ours for one call. A
local endpoint (the `aws_endpoint_url` variable) also goes to Terraform as `AWS_ENDPOINT_URL`, which the
AWS provider's SDK uses for every service (terraform/providers.tf says why it is not an `endpoints` block).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError
from mlops.settings import Settings

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SOURCE_LINE = re.compile(r"^\d+:")
#: The state file format whose `outputs` `Workspace.outputs` reads directly.
_STATE_FORMAT = 4


@contextlib.contextmanager
def _environment(overrides: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def last_error(stderr: str, stdout: str = "") -> str:
    """Terraform's last `Error: …` line with the first line of its explanation, else its last non-empty line."""
    lines = [_ANSI.sub("", line).strip() for line in (stderr + "\n" + stdout).splitlines()]
    lines = [line for line in lines if line]
    starts = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    if not starts:
        return lines[-1] if lines else "terraform failed without a message"
    summary = lines[starts[-1]]
    # After the summary come the source location and expression values, then the explanation.
    for line in lines[starts[-1] + 1:]:
        if line.startswith(("on ", "with ", "├", "│", "╷", "╵", "Warning:")) or _SOURCE_LINE.match(line):
            continue
        return f"{summary}: {line}"
    return summary


def cli_config(plugin_dir: Path) -> str:
    """A Terraform CLI configuration installing hashicorp/aws from a filesystem mirror only."""
    path = json.dumps(str(plugin_dir))  # a JSON string is a valid HCL string
    return (
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path    = {path}\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n"
        "  direct {\n    exclude = [\"registry.terraform.io/hashicorp/aws\"]\n  }\n"
        "}\n"
    )


class Workspace:
    """Terraform for one environment: init, validate, plan, apply, output and show, through python-terraform."""

    def __init__(self, environment: str, settings: Settings | None = None, source_dir: Path | None = None):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", environment):
            raise MlopsError(f"environment name '{environment}' is not a simple folder name", "use lowercase letters, digits, - and _")
        self.settings = settings or Settings.from_env()
        self.environment = environment
        self.source_dir = source_dir or self.settings.terraform_dir
        self.home = self.settings.state_dir / environment / "terraform"
        self.config_dir = self.home / "config"
        self.data_dir = self.home / "data"
        # The working folder's default local state: no backend block and no deprecated -state flag needed.
        self.state_file = self.config_dir / "terraform.tfstate"
        self.log_dir = self.home / "logs"
        self._initialised = False

    # -- plumbing ------------------------------------------------------------------------------------
    def _env(self, endpoint: str = "") -> dict[str, str]:
        env = {"TF_DATA_DIR": str(self.data_dir), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        if self.settings.tf_plugin_dir is not None:
            rc_file = self.home / "cli.tfrc"
            rc_file.write_text(cli_config(self.settings.tf_plugin_dir), encoding="utf-8")
            env["TF_CLI_CONFIG_FILE"] = str(rc_file)
        if endpoint:
            env["AWS_ENDPOINT_URL"] = endpoint
        return env

    def _sync_config(self) -> None:
        """Copy the Terraform configuration into the environment's working folder, keeping its state."""
        if not (self.source_dir / "main.tf").is_file():
            raise MlopsError(f"{self.source_dir}: no Terraform root (main.tf) found", "set MLOPS_ROOT to the ml-ops checkout")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for item in self.config_dir.iterdir():  # drop files removed from the source since the last copy
            if item.is_dir():
                shutil.rmtree(item)
            elif not item.name.startswith((".", "terraform.tfstate")):
                item.unlink()
        shutil.copytree(
            self.source_dir,
            self.config_dir,
            dirs_exist_ok=True,
            ignore=lambda folder, names: [n for n in names if n.startswith((".", "terraform.tfstate"))],
        )

    def _terraform(self):  # type: ignore[no-untyped-def]
        from python_terraform import Terraform

        return Terraform(working_dir=str(self.config_dir))

    def run(
        self, command: str, *args: str, what: str | None = None, ok_codes: tuple[int, ...] = (0,), endpoint: str = "", **options: Any
    ) -> str:
        """Run `terraform <command>` through python-terraform; return stdout or raise MlopsError.

        `endpoint`: a local AWS endpoint for the provider (`AWS_ENDPOINT_URL`); empty for the real AWS.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        # python-terraform logs failures with the deprecated Logger.warn; its warning is not ours to show.
        with _environment(self._env(endpoint)), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            code, out, err = self._terraform().cmd(command, *args, no_color=_flag(), **options)
        log_file = self.log_dir / f"{command}.log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file.write_text(f"$ terraform {command} {' '.join(args)}\n{out}\n{err}", encoding="utf-8")
        if code not in ok_codes:
            raise MlopsError(
                f"terraform {what or command} failed: {last_error(err or '', out or '')}",
                f"full output in {log_file}",
            )
        return out or ""

    # -- commands ------------------------------------------------------------------------------------
    def init(self) -> None:
        """Copy the configuration and install the provider (from the mirror when one is set)."""
        self._sync_config()
        self.run("init", input=False, backend="true", what="init")
        self._initialised = True

    def _ensure_init(self) -> None:
        if not self._initialised:
            self.init()

    def validate(self) -> dict[str, Any]:
        """`terraform validate -json`: the diagnostics as data (raises when the configuration is invalid)."""
        self._ensure_init()
        result = json.loads(self.run("validate", json=_flag(), ok_codes=(0, 1)))
        if not result.get("valid"):
            messages = [d.get("summary", "") + " " + d.get("detail", "") for d in result.get("diagnostics", [])]
            raise MlopsError(f"terraform validate failed: {'; '.join(messages)}", f"fix {self.source_dir}")
        return result

    def _var_options(self, variables: dict[str, Any]) -> dict[str, Any]:
        # The working folder is a copy, so the registry paths are always given, absolute, from the settings.
        values = {"platform_file": str(self.settings.platform_file.resolve()), "tenants_dir": str(self.settings.tenants_dir.resolve())}
        values.update(variables)
        # python-terraform writes a dict of variables to a temporary -var-file (JSON), so any type passes.
        return {"var": values, "input": False}

    def plan(self, variables: dict[str, Any]) -> dict[str, Any]:
        """`terraform plan` saved and read back with `show -json`: the planned changes as data."""
        self._ensure_init()
        plan_file = self.home / "tfplan"
        self.run("plan", out=str(plan_file), endpoint=variables.get("aws_endpoint_url", ""), **self._var_options(variables))
        return json.loads(self.run("show", str(plan_file), json=_flag(), what="show plan"))

    def apply(self, variables: dict[str, Any], parallelism: int = 20) -> dict[str, Any]:
        """`terraform apply -auto-approve`; return the outputs as plain values."""
        self._ensure_init()
        endpoint = variables.get("aws_endpoint_url", "")
        self.run("apply", auto_approve=_flag(), parallelism=parallelism, endpoint=endpoint, **self._var_options(variables))
        return self.outputs()

    def outputs(self) -> dict[str, Any]:
        """Every root output as its plain value (empty when nothing was applied).

        Read from the state file when it has format version 4 (Terraform 0.12 and later), whose `outputs`
        hold the very values `terraform output -json` prints: that spares a Terraform run, and every run
        hashes the 700 MB provider against the lock file first (~0.5 s of CPU). Any other format goes
        through `terraform output -json`.
        """
        if not self.state_file.is_file():
            return {}
        state = json.loads(self.state_file.read_text(encoding="utf-8"))
        if state.get("version") == _STATE_FORMAT:
            return {name: item["value"] for name, item in state.get("outputs", {}).items()}
        return self.terraform_outputs()

    def terraform_outputs(self) -> dict[str, Any]:
        """Every root output as `terraform output -json` prints it, reduced to its plain value."""
        raw = json.loads(self.run("output", json=_flag()) or "{}")
        return {name: item["value"] for name, item in raw.items()}

    def show_state(self) -> dict[str, Any]:
        """The applied state as `terraform show -json` prints it."""
        if not self.state_file.is_file():
            return {}
        self._ensure_init()
        return json.loads(self.run("show", json=_flag(), what="show state"))

    def forget(self) -> None:
        """Remove the environment's state and working folder (the local AWS is reset, not destroyed)."""
        shutil.rmtree(self.home, ignore_errors=True)


def _flag():  # type: ignore[no-untyped-def]
    from python_terraform import IsFlagged

    return IsFlagged


def resource_changes(plan: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(address, actions) of every resource the plan would change, no-ops left out."""
    return [
        (change["address"], tuple(change["change"]["actions"]))
        for change in plan.get("resource_changes", [])
        if tuple(change["change"]["actions"]) not in (("no-op",), ("read",))
    ]


#: In-place updates a second plan against moto shows because moto reads some attributes back differently
#: (docs/terraform.md lists them): resource type -> attributes that may differ.
KNOWN_MOTO_DRIFT = {
    "aws_sqs_queue": frozenset({"redrive_policy"}),
    "aws_s3_bucket_notification": frozenset({"eventbridge"}),
    "aws_lambda_function": frozenset({"dead_letter_config"}),
}


def changed_attributes(change: dict[str, Any]) -> set[str]:
    """Top-level attributes whose planned value differs from the current one."""
    before, after = change["change"].get("before") or {}, change["change"].get("after") or {}
    unknown = change["change"].get("after_unknown") or {}
    return {key for key in set(before) | set(after) if before.get(key) != after.get(key) or unknown.get(key) is True}


def is_known_drift(change: dict[str, Any]) -> bool:
    """True for an in-place update that only touches attributes moto reads back differently."""
    if change["change"]["actions"] != ["update"]:
        return False
    allowed = KNOWN_MOTO_DRIFT.get(change["type"], frozenset())
    return bool(allowed) and changed_attributes(change) <= allowed


_TENANT_MODULE = re.compile(r'^module\.tenant\["([^"]+)"\]')


def component(address: str) -> str:
    """Who a resource belongs to, in the user's words: `platform`, `tenant <id>`, `ci` or `root`."""
    tenant = _TENANT_MODULE.match(address)
    if tenant:
        return f"tenant {tenant.group(1)}"
    if address.startswith("module."):
        return address.split(".", 2)[1].split("[", 1)[0]
    return "root"


def _action(actions: tuple[str, ...]) -> str:
    return "replace" if set(actions) == {"delete", "create"} else "/".join(actions)


def summarise(plan: dict[str, Any], local: bool) -> dict[str, Any]:
    """A plan in a few numbers: changes by component and action, totals, and (on moto) the known drift apart."""
    by_component: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    drift: list[str] = []
    changes: list[dict[str, Any]] = []
    for change in plan.get("resource_changes", []):
        actions = tuple(change["change"]["actions"])
        if actions in (("no-op",), ("read",)):
            continue
        if local and is_known_drift(change):
            drift.append(change["address"])
            continue
        action, owner = _action(actions), component(change["address"])
        by_component.setdefault(owner, {})
        by_component[owner][action] = by_component[owner].get(action, 0) + 1
        totals[action] = totals.get(action, 0) + 1
        changes.append({"address": change["address"], "component": owner, "action": action})
    return {"by_component": dict(sorted(by_component.items())), "totals": totals, "known_drift": drift, "changes": changes}
