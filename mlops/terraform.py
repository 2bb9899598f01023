"""A thin layer over python-terraform: one working folder and one state file per environment.

For an environment (`local`, `test-…`, later a real account) everything Terraform writes lives under
`$MLOPS_STATE_DIR/<environment>/terraform/`: a copy of the repository's `terraform/` configuration (so the
provider lock file and `.terraform/` never land in the checkout and two environments never race on them),
`TF_DATA_DIR`, the state file, a CLI configuration and the log of the last command. The committed
`.terraform.lock.hcl` travels with the copy and `init` reads it only (`-lockfile=readonly`): the lock, not
the registry, decides the provider. `find_aws_provider` looks for `hashicorp/aws` where Terraform does
(`MLOPS_TF_PLUGIN_DIR` first); the CLI configuration installs it from there (`filesystem_mirror`), so
nothing is downloaded. Without one, Terraform downloads into one shared plugin cache. Failures become
`MlopsError` with Terraform's last meaningful error line and the log's path.

python-terraform passes the process environment to Terraform; `_environment` adds ours for one call. A
local endpoint (the `aws_endpoint_url` variable) also goes to Terraform as `AWS_ENDPOINT_URL`, which the
AWS provider's SDK uses for every service (terraform/providers.tf says why it is not an `endpoints` block).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
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


_AWS_PROVIDER = Path("registry.terraform.io", "hashicorp", "aws")
_CLI_CONFIG_PATH = re.compile(r'^\s*(?:plugin_cache_dir|path)\s*=\s*"([^"]+)"', re.MULTILINE)
#: Where machine images put a provider mirror that Terraform's own search does not reach (/opt/<folder>).
_MACHINE_MIRRORS = Path("/opt")
PLUGIN_DIR_HINT = ("set MLOPS_TF_PLUGIN_DIR to a folder holding registry.terraform.io/hashicorp/aws "
                   "(`terraform providers mirror DIR` makes one on a machine with internet)")


def terraform_platform() -> str:
    """Terraform's name for this machine's platform, e.g. `linux_amd64`."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def holds_aws_provider(folder: Path) -> bool:
    """True when `folder` is a provider mirror or plugin cache holding hashicorp/aws for this platform.

    Both of Terraform's layouts count: unpacked (`<version>/<os_arch>/`) and packed
    (`terraform-provider-aws_<version>_<os_arch>.zip`).
    """
    provider = folder / _AWS_PROVIDER
    plat = terraform_platform()
    return any(provider.glob(f"*/{plat}")) or any(provider.glob(f"terraform-provider-aws_*_{plat}.zip"))


def provider_search_path(env: dict[str, str] | None = None) -> list[Path]:
    """Every folder `find_aws_provider` looks in, in order.

    Terraform's own places (its CLI configuration documentation): the plugin cache (`TF_PLUGIN_CACHE_DIR`,
    `plugin_cache_dir`) and the `filesystem_mirror` paths of the CLI configuration (`TF_CLI_CONFIG_FILE`,
    else `~/.terraformrc`), then the implied local mirror directories (`terraform.d/plugins` in the working
    folder, `~/.terraform.d/plugins`, `$XDG_DATA_HOME/terraform/plugins`, each `$XDG_DATA_DIRS` entry's
    `terraform/plugins`); last, the folders directly under /opt, where machine images keep mirrors.
    """
    env = dict(os.environ if env is None else env)
    home = Path(env.get("HOME") or Path.home())
    folders: list[Path] = []
    if env.get("TF_PLUGIN_CACHE_DIR"):
        folders.append(Path(env["TF_PLUGIN_CACHE_DIR"]))
    config = Path(env["TF_CLI_CONFIG_FILE"]) if env.get("TF_CLI_CONFIG_FILE") else home / ".terraformrc"
    try:
        text = config.read_text(encoding="utf-8")
    except OSError:
        text = ""
    folders += [Path(os.path.expandvars(m.replace("$HOME", str(home)))).expanduser() for m in _CLI_CONFIG_PATH.findall(text)]
    data_home = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = [Path(d) for d in (env.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":") if d]
    folders += [Path("terraform.d", "plugins").resolve(), home / ".terraform.d" / "plugins", data_home / "terraform" / "plugins"]
    folders += [d / "terraform" / "plugins" for d in data_dirs]
    if _MACHINE_MIRRORS.is_dir():
        folders += sorted(p for p in _MACHINE_MIRRORS.iterdir() if p.is_dir())
    return folders


def find_aws_provider(env: dict[str, str] | None = None) -> Path | None:
    """The folder to install hashicorp/aws from: `MLOPS_TF_PLUGIN_DIR`, else the first of `provider_search_path`.

    None means Terraform downloads the provider from the registry. A `MLOPS_TF_PLUGIN_DIR` that holds no
    provider is an error, not a fallback: the user asked for that folder.
    """
    env = dict(os.environ if env is None else env)
    if env.get("MLOPS_TF_PLUGIN_DIR"):
        chosen = Path(env["MLOPS_TF_PLUGIN_DIR"])
        if not holds_aws_provider(chosen):
            raise MlopsError(f"MLOPS_TF_PLUGIN_DIR={chosen} holds no hashicorp/aws provider for {terraform_platform()}",
                             PLUGIN_DIR_HINT)
        return chosen
    return next((folder for folder in provider_search_path(env) if holds_aws_provider(folder)), None)


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
        self.plan_file = self.home / "tfplan"
        self.log_dir = self.home / "logs"
        self._initialised = False
        self._provider_dir: Path | None = None

    # -- plumbing ------------------------------------------------------------------------------------
    def _env(self, endpoint: str = "") -> dict[str, str]:
        env = {"TF_DATA_DIR": str(self.data_dir), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        if self._provider_dir is None:
            self._provider_dir = find_aws_provider({**os.environ, "MLOPS_TF_PLUGIN_DIR": str(self.settings.tf_plugin_dir or "")})
        if self._provider_dir is not None:
            rc_file = self.home / "cli.tfrc"
            rc_file.write_text(cli_config(self._provider_dir), encoding="utf-8")
            env["TF_CLI_CONFIG_FILE"] = str(rc_file)
        else:  # downloaded once into a cache every environment shares
            cache = self.settings.cache_dir / "terraform-plugins"
            cache.mkdir(parents=True, exist_ok=True)
            env["TF_PLUGIN_CACHE_DIR"] = str(cache)
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
            elif not item.name.startswith((".", "terraform.tfstate")) or item.name == ".terraform.lock.hcl":
                item.unlink()
        shutil.copytree(
            self.source_dir,
            self.config_dir,
            dirs_exist_ok=True,
            ignore=lambda folder, names: [n for n in names
                                          if n.startswith((".", "terraform.tfstate")) and n != ".terraform.lock.hcl"],
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
        # A committed lock decides the provider and is never rewritten; a configuration without one (a test's
        # own root) gets a lock in its working copy.
        locked = {"lockfile": "readonly"} if (self.source_dir / ".terraform.lock.hcl").is_file() else {}
        try:
            self.run("init", input=False, backend="true", what="init", **locked)
        except MlopsError as error:
            if self._provider_dir is None and "hashicorp/aws" in error.message:
                raise MlopsError(f"{error.message} (no local copy of the provider was found either)", PLUGIN_DIR_HINT) from None
            raise
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
        """`terraform plan` saved to `plan_file` and read back with `show -json`: the planned changes as data.

        `apply(variables, saved_plan=True)` then applies exactly this plan.
        """
        self._ensure_init()
        self.plan_file.unlink(missing_ok=True)  # a failed plan must not leave an older plan to apply
        self.run("plan", out=str(self.plan_file), endpoint=variables.get("aws_endpoint_url", ""), **self._var_options(variables))
        return json.loads(self.run("show", str(self.plan_file), json=_flag(), what="show plan"))

    def apply(self, variables: dict[str, Any], parallelism: int = 20, events: Path | None = None,
              saved_plan: bool = False) -> dict[str, Any]:
        """`terraform apply -auto-approve`; return the outputs as plain values.

        `saved_plan`: apply the plan the last `plan` call saved, exactly as it was checked, instead of planning
        again (its variables travel in the plan file; Terraform refuses it once the state has moved on).
        `events`: stream Terraform's machine-readable UI (`-json`, one JSON object a line) into this file
        while the apply runs, for someone else to follow (`applied_so_far`).
        """
        self._ensure_init()
        endpoint = variables.get("aws_endpoint_url", "")
        if saved_plan and not self.plan_file.is_file():
            raise MlopsError(f"no saved plan in {self.plan_file}", "run the plan first")
        args, options = ((str(self.plan_file),), {"input": False}) if saved_plan else ((), self._var_options(variables))
        if events is None:
            self.run("apply", *args, auto_approve=_flag(), parallelism=parallelism, endpoint=endpoint, **options)
            return self.outputs()
        self.home.mkdir(parents=True, exist_ok=True)
        with open(events, "w", encoding="utf-8") as stream, contextlib.redirect_stdout(stream), \
                _environment(self._env(endpoint)), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # capture_output=False: python-terraform hands Terraform this process's stdout, the events file
            code, _, _ = self._terraform().cmd("apply", *args, auto_approve=_flag(), parallelism=parallelism, json=_flag(),
                                               capture_output=False, **options)
        if code != 0:
            errors = applied_so_far(events.read_text(encoding="utf-8"))["errors"]
            raise MlopsError(f"terraform apply failed: {errors[-1] if errors else 'no error reported'}", f"full output in {events}")
        return self.outputs()

    def graph(self) -> str:
        """`terraform graph`: the configuration's resources and their dependencies, in DOT (no AWS call)."""
        self._ensure_init()
        return self.run("graph", what="graph")

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


_GRAPH_EDGE = re.compile(r'^\s*"([^"]+)"\s*->\s*"([^"]+)"', re.MULTILINE)
_GRAPH_NODE = re.compile(r'^\s*"([^"]+)"\s*\[label=', re.MULTILINE)
_INSTANCE_KEY = re.compile(r'\[[^\]]*\]')


def graph_resources(dot: str) -> tuple[set[str], dict[str, set[str]]]:
    """The managed resources of `terraform graph`'s summary and, for each, the resources it depends on."""
    def managed(address: str) -> bool:
        return not (address.startswith("data.") or ".data." in address)

    nodes = {node for node in _GRAPH_NODE.findall(dot) if managed(node)}
    needs: dict[str, set[str]] = {node: set() for node in nodes}
    for source, target in _GRAPH_EDGE.findall(dot):
        if source in needs and managed(target):
            needs[source].add(target)
    return nodes, needs


def split_by_wait(dot: str, slow_types: frozenset[str]) -> tuple[list[str], list[str]]:
    """(first, later): the graph's resources split so that `later` holds every resource of `slow_types` and
    everything that depends on one, and `first` the rest, which needs nothing from `later`."""
    nodes, needs = graph_resources(dot)
    later = {node for node in nodes if node.rsplit(".", 2)[-2] in slow_types}
    grown = True
    while grown:
        grown = False
        for node in nodes - later:
            if needs[node] & later:
                later.add(node)
                grown = True
    return sorted(nodes - later), sorted(later)


def config_address(instance: str) -> str:
    """The configuration address of a resource instance: `module.tenant["a"].aws_s3_bucket.x["y"]` ->
    `module.tenant.aws_s3_bucket.x`."""
    return _INSTANCE_KEY.sub("", instance)


def applied_so_far(events: str) -> dict[str, Any]:
    """What an apply's `-json` event stream says so far: instances planned and created, and errors."""
    planned, done, errors = set(), set(), []
    for line in events.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line still being written
        kind = event.get("type")
        if kind == "planned_change" and event["change"]["action"] != "noop":
            planned.add(event["change"]["resource"]["addr"])
        elif kind == "apply_complete":
            done.add(event["hook"]["resource"]["addr"])
        elif kind == "diagnostic" and event.get("@level") == "error":
            diagnostic = event.get("diagnostic", {})
            detail = (diagnostic.get("detail") or "").strip().splitlines()
            errors.append(f"Error: {diagnostic.get('summary', '')}" + (f": {detail[0]}" if detail else ""))
    return {"planned": planned, "done": done, "errors": errors}
