"""Terraform without AWS: formatting, validation, the wrapper's error lines, and reproducible Lambda zips."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from mlops.errors import MlopsError
from mlops.packaging import FUNCTIONS, build_packages, sha256_of
from mlops.settings import Settings
from mlops.plans import resource_changes
from mlops.terraform import Workspace, cli_config, last_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.terraform
def test_terraform_files_are_formatted(terraform_bin: str) -> None:
    result = subprocess.run([terraform_bin, "fmt", "-check", "-recursive", "-list=true", str(ROOT / "terraform")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`: {result.stdout}"


@pytest.mark.slow
@pytest.mark.terraform
def test_root_and_modules_validate(terraform_bin: str, tmp_path: Path) -> None:  # pylint: disable=unused-argument  # skips without terraform
    settings = Settings.from_env({"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(tmp_path), **_plugin_env()})
    result = Workspace("validate", settings).validate()
    assert result["valid"] is True
    assert result["error_count"] == 0
    # the working copy lives under the state folder: nothing lands in the checkout
    assert (tmp_path / "validate" / "terraform" / "config" / ".terraform.lock.hcl").is_file()
    assert not (ROOT / "terraform" / ".terraform").exists()


def _plugin_env() -> dict[str, str]:
    import os

    return {"MLOPS_TF_PLUGIN_DIR": os.environ["MLOPS_TF_PLUGIN_DIR"]} if os.environ.get("MLOPS_TF_PLUGIN_DIR") else {}


def test_last_error_keeps_the_summary_and_its_explanation() -> None:
    stderr = """
Warning: something harmless

Error: creating S3 Bucket (b): operation error S3: CreateBucket, https response error StatusCode: 409

  with module.platform.aws_s3_bucket.artifacts,
  on modules/platform/main.tf line 27, in resource "aws_s3_bucket" "artifacts":
  27: resource "aws_s3_bucket" "artifacts" {

BucketAlreadyOwnedByYou: Your previous request to create the named bucket succeeded
"""
    line = last_error(stderr)
    assert line.startswith("Error: creating S3 Bucket (b)")
    assert line.endswith("BucketAlreadyOwnedByYou: Your previous request to create the named bucket succeeded")
    assert last_error("", "") == "terraform failed without a message"
    assert last_error("just one line\n") == "just one line"


def test_cli_config_points_at_the_mirror_for_aws_only(tmp_path: Path) -> None:
    text = cli_config(tmp_path / "mirror")
    assert f'"{tmp_path / "mirror"}"' in text
    assert 'include = ["registry.terraform.io/hashicorp/aws"]' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text


def test_environment_name_must_be_a_folder_name(tmp_path: Path) -> None:
    settings = Settings.from_env({"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(tmp_path)})
    with pytest.raises(MlopsError, match="not a simple folder name"):
        Workspace("../escape", settings)


def test_resource_changes_leaves_out_no_ops() -> None:
    plan = {"resource_changes": [
        {"address": "a", "change": {"actions": ["no-op"]}},
        {"address": "b", "change": {"actions": ["create"]}},
        {"address": "c", "change": {"actions": ["delete", "create"]}},
    ]}
    assert resource_changes(plan) == [("b", ("create",)), ("c", ("delete", "create"))]


def test_lambda_packages_are_reproducible_and_hold_handler_mlops_and_registry(tmp_path: Path) -> None:
    first = build_packages(ROOT, tmp_path / "one")
    second = build_packages(ROOT, tmp_path / "two")
    assert sorted(first) == sorted([*FUNCTIONS, "layer"])
    for function in [*FUNCTIONS, "layer"]:
        assert sha256_of(first[function]) == sha256_of(second[function])
    for function in FUNCTIONS:
        assert sha256_of(first[function]) == sha256_of(second[function])
        with zipfile.ZipFile(first[function]) as archive:
            names = archive.namelist()
            assert names == sorted(names)
            assert "handler.py" in names
            assert "mlops/naming.py" in names
            assert not [n for n in names if n.startswith(("mlops/cli/", "mlops/local/")) or n.endswith(".pyc")]
            assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
            assert "registry/platform.yaml" in names
            tenant_files = {f"registry/tenants/{p.name}" for p in (ROOT / "tenants").glob("*.yaml")}
            assert {n for n in names if n.startswith("registry/tenants/")} == tenant_files
    with zipfile.ZipFile(first["layer"]) as archive:
        tops = {name.split("/")[1] for name in archive.namelist()}
    assert {"pydantic", "pydantic_core", "yaml", "semver", "aws_lambda_powertools"} <= tops
    assert not {"boto3", "botocore"} & tops  # the runtime has them
    assert (tmp_path / "one" / "layer.runtime").read_text().strip() == "python3.11"


def test_missing_handler_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MlopsError, match="Lambda handler not found"):
        build_packages(tmp_path, tmp_path / "out")


def test_summarise_counts_by_tenant_platform_and_ci_and_sets_known_drift_apart() -> None:
    from mlops.plans import component, summarise

    def change(address: str, kind: str, actions: list[str], before: dict | None = None, after: dict | None = None) -> dict:
        return {"address": address, "type": kind, "change": {"actions": actions, "before": before, "after": after}}

    plan = {"resource_changes": [
        change('module.tenant["acme"].aws_s3_bucket.tenant', "aws_s3_bucket", ["create"]),
        change('module.tenant["acme"].aws_iam_role.tenant', "aws_iam_role", ["create"]),
        change("module.platform.aws_sqs_queue.queue[\"gold\"]", "aws_sqs_queue", ["update"],
               {"redrive_policy": "{\"a\": 1}", "name": "q"}, {"redrive_policy": "{\"a\":1}", "name": "q"}),
        change("module.ci[0].aws_iam_role.ci[\"build\"]", "aws_iam_role", ["delete", "create"]),
        change("data.aws_caller_identity.current", "aws_caller_identity", ["read"]),
    ]}
    local = summarise(plan, local=True)
    assert local["by_component"] == {"ci": {"replace": 1}, "tenant acme": {"create": 2}}
    assert local["totals"] == {"create": 2, "replace": 1}
    assert local["known_drift"] == ['module.platform.aws_sqs_queue.queue["gold"]']
    # Against a real account the same difference is a change like any other.
    assert summarise(plan, local=False)["by_component"]["platform"] == {"update": 1}
    assert component("aws_iam_role.x") == "root"


def test_infra_var_file_is_read_as_json_and_hcl_is_refused(tmp_path: Path) -> None:
    from mlops.cli.infra import _read_var_file  # pylint: disable=import-outside-toplevel  # the CLI module keeps its imports lazy

    good = tmp_path / "prod.tfvars.json"
    good.write_text('{"gitlab": {"project_path": "acme/ml-ops"}, "ci_infra_policy_arns": []}', encoding="utf-8")
    assert _read_var_file(str(good)) == {"gitlab": {"project_path": "acme/ml-ops"}, "ci_infra_policy_arns": []}
    with pytest.raises(MlopsError, match="only .tfvars.json"):
        _read_var_file(str(tmp_path / "prod.tfvars"))


def _mirror(folder: Path, version: str = "5.100.0") -> Path:
    """A provider mirror in Terraform's unpacked layout (an empty plugin file is enough to be found)."""
    from mlops.terraform import terraform_platform

    plugin = folder / "registry.terraform.io" / "hashicorp" / "aws" / version / terraform_platform()
    plugin.mkdir(parents=True)
    (plugin / f"terraform-provider-aws_v{version}_x5").write_bytes(b"")
    return folder


@pytest.mark.parametrize("where", [
    pytest.param(lambda home, env: home / ".terraform.d" / "plugins", id="implied-home-terraform.d"),
    pytest.param(lambda home, env: home / ".local" / "share" / "terraform" / "plugins", id="implied-xdg-data-home"),
    pytest.param(lambda home, env: Path(env["XDG_DATA_DIRS"].split(":")[1]) / "terraform" / "plugins", id="implied-xdg-data-dirs"),
    pytest.param(lambda home, env: Path(env["TF_PLUGIN_CACHE_DIR"]), id="plugin-cache-variable"),
])
def test_the_provider_is_found_where_terraform_looks(tmp_path: Path, where) -> None:  # type: ignore[no-untyped-def]
    from mlops.terraform import find_aws_provider

    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_DATA_DIRS": f"{tmp_path / 'a'}:{tmp_path / 'b'}", "TF_PLUGIN_CACHE_DIR": str(tmp_path / "cache"),
           "TF_CLI_CONFIG_FILE": str(tmp_path / "missing.tfrc")}
    folder = _mirror(where(home, env))
    assert find_aws_provider(env) == folder


def test_the_cli_configuration_plugin_cache_and_mirror_paths_count(tmp_path: Path) -> None:
    from mlops.terraform import find_aws_provider

    cache, mirror = tmp_path / "cache", tmp_path / "mirror"
    rc = tmp_path / "cli.tfrc"
    rc.write_text(f'plugin_cache_dir = "{cache}"\nprovider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n',
                  encoding="utf-8")
    env = {"HOME": str(tmp_path / "home"), "TF_CLI_CONFIG_FILE": str(rc), "XDG_DATA_DIRS": str(tmp_path / "none")}
    _mirror(mirror)
    assert find_aws_provider(env) == mirror
    _mirror(cache)
    assert find_aws_provider(env) == cache  # the plugin cache comes first, as in Terraform


def test_a_provider_setting_that_holds_no_provider_names_itself(tmp_path: Path) -> None:
    from mlops.terraform import find_aws_provider

    with pytest.raises(MlopsError, match=r"MLOPS_TF_PLUGIN_DIR=.*holds no hashicorp/aws provider") as error:
        find_aws_provider({"MLOPS_TF_PLUGIN_DIR": str(tmp_path), "HOME": str(tmp_path)})
    assert "terraform providers mirror" in error.value.one_line()
    assert find_aws_provider({"MLOPS_TF_PLUGIN_DIR": str(_mirror(tmp_path / "m")), "HOME": str(tmp_path)}) == tmp_path / "m"


@pytest.mark.terraform
def test_offline_without_a_provider_the_error_names_the_setting(terraform_bin: str, tmp_path: Path,  # pylint: disable=unused-argument
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """No copy anywhere Terraform looks and no registry: `init` fails with the fix in the same line."""
    import mlops.terraform

    monkeypatch.setattr(mlops.terraform, "find_aws_provider", lambda env=None: None)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # the registry is unreachable, as offline
    settings = Settings.from_env({"MLOPS_ROOT": str(ROOT), "MLOPS_STATE_DIR": str(tmp_path)})
    with pytest.raises(MlopsError) as error:
        Workspace("offline", settings).init()
    line = error.value.one_line()
    assert "terraform init failed" in line and "hashicorp/aws" in line
    assert "no local copy of the provider was found" in line and "MLOPS_TF_PLUGIN_DIR" in line
