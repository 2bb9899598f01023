"""The SageMaker container contract, played by a subprocess on this machine (no Docker).

A processing or training job of the definition (its resolved CreateProcessingJob / CreateTrainingJob
request) runs here as `sys.executable <script>` in a job folder whose `opt/ml` the script sees at `/opt/ml`:
the subprocess runs in a private mount namespace with that folder bound over `/opt/ml` (`unshare` as
root, else `bwrap`), so `/opt/ml/processing/...`, `/opt/ml/input/data/<channel>`,
`/opt/ml/input/config/hyperparameters.json`, `/opt/ml/model` and `/opt/ml/output` are where SageMaker puts
them. Where no namespace can be made, container paths in the job's arguments and variables are rewritten
to the job folder instead, and the job log says so. The inputs are downloaded from S3 and the outputs
uploaded through the given boto3 client (made with the job's role), and the job's role credentials are in
the script's environment. Training gets the script-mode environment of the SageMaker training toolkit
(`SM_*` variables, hyperparameters as arguments, the files under `/opt/ml/input/config`) and its
`model.tar.gz` packed. A job that exits non-zero, times out or cannot find its inputs raises `JobFailed`
with a readable reason (the script's last stderr line, as SageMaker shows its failure reason).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError

CONTAINER_ROOT = "/opt/ml"
HOST = "algo-1"
INSTANCE_GROUP = "homogeneousCluster"
STDERR_TAIL_LINES = 20
#: `off` makes every job use the variables only (what happens anyway where no namespace can be made).
NAMESPACE_SWITCH = "MLOPS_LOCAL_MOUNT_NAMESPACE"
# Variables of the engine's own process a job must not inherit: its credentials (the job gets its role's)
# and anything a container would not have.
_NOT_INHERITED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")
# unshare runs this shell as root in the new namespace: bind the job folder, enter the working folder, run.
_IN_NAMESPACE = 'mount --bind "$1" /opt/ml && cd "$2" && shift 2 && exec "$@"'


class JobFailed(Exception):
    """A job ended without success; `reason` is one line, `log_tail` the script's last stderr lines."""

    def __init__(self, reason: str, log_tail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


@dataclass
class JobResult:
    """What a finished job adds to its Describe*Job shape, and where its log is."""

    properties: dict[str, Any]
    log_file: Path
    seconds: float


@dataclass(frozen=True)
class Isolation:
    """How jobs see `/opt/ml` on this machine: `unshare` or `bwrap` (a private mount namespace), or `none`."""

    kind: str
    reason: str = ""

    @property
    def real_paths(self) -> bool:
        """Whether scripts see SageMaker's own paths."""
        return self.kind != "none"

    def warning(self) -> str:
        """The one line that says why container paths reach scripts through variables only."""
        return (f"warning: no private mount namespace for the job ({self.reason}); /opt/ml/... paths are rewritten "
                "to the job folder in its arguments and variables only, so a script that uses SageMaker's paths "
                "directly will not find its files")


_isolation: Isolation | None = None  # pylint: disable=invalid-name  # found once, then read
_isolation_lock = threading.Lock()


def isolation() -> Isolation:
    """What this machine allows, found once per process by trying it."""
    global _isolation  # pylint: disable=global-statement  # one probe per process: it starts subprocesses
    with _isolation_lock:
        if _isolation is None:
            _isolation = _probe()
        return _isolation


def _probe() -> Isolation:
    if os.environ.get(NAMESPACE_SWITCH, "").lower() in ("off", "0", "false", "no"):
        return Isolation("none", f"switched off by {NAMESPACE_SWITCH}")
    problems = []
    with tempfile.TemporaryDirectory(prefix="mlops-probe-") as probe:
        for kind in ("unshare", "bwrap"):
            if shutil.which(kind) is None:
                problems.append(f"no {kind}")
                continue
            try:
                if kind == "unshare":
                    Path(CONTAINER_ROOT).mkdir(parents=True, exist_ok=True)  # the mount point; stays empty
                done = subprocess.run(_wrapped(kind, probe, probe, ["true"]), capture_output=True, text=True, timeout=20,
                                      check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                problems.append(f"{kind}: {exc}")
                continue
            if done.returncode == 0:
                return Isolation(kind)
            problems.append(f"{kind}: {(done.stderr.strip().splitlines() or ['exit ' + str(done.returncode)])[-1]}")
    return Isolation("none", "; ".join(problems))


def _wrapped(kind: str, root: str, cwd: str, command: list[str]) -> list[str]:
    """`command` in a private mount namespace with `root` bound at /opt/ml, started in `cwd`."""
    if kind == "unshare":
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _IN_NAMESPACE, "sh", root, cwd, *command]
    if kind == "bwrap":
        return ["bwrap", "--dev-bind", "/", "/", "--bind", root, CONTAINER_ROOT, "--chdir", cwd, "--", *command]
    return command


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise JobFailed(f"'{uri}' is not an S3 URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class Job:
    """One job's folder: `/opt/ml/...` paths of the request live under `<folder>/opt/ml/...`."""

    def __init__(self, s3: Any, folder: Path, timeout: float, credentials: dict[str, str] | None = None):
        self.s3 = s3
        self.folder = folder
        self.timeout = timeout
        self.credentials = credentials or {}
        self.isolation = isolation()
        folder.mkdir(parents=True, exist_ok=True)
        self.local(CONTAINER_ROOT).mkdir(parents=True, exist_ok=True)
        self.log_file = folder / "job.log"

    def local(self, container_path: str) -> Path:
        """The local folder standing in for a container path."""
        if not container_path.startswith(CONTAINER_ROOT):
            raise JobFailed(f"container path '{container_path}' is outside {CONTAINER_ROOT}")
        return self.folder / container_path.lstrip("/")

    def seen(self, container_path: str) -> str:
        """The path the script sees for a container path: itself in a namespace, else its local folder."""
        return container_path if self.isolation.real_paths else str(self.local(container_path))

    def map_text(self, value: str) -> str:
        """A container path inside an argument or variable, as the script sees it."""
        return self.seen(value) if value.startswith(CONTAINER_ROOT) else value

    # -- S3 -------------------------------------------------------------------------------------
    def download(self, uri: str, dest: Path, what: str) -> int:
        """Copy every object under an S3 prefix (or one object) into `dest`; 0 objects is a failure."""
        bucket, prefix = split_s3(uri)
        dest.mkdir(parents=True, exist_ok=True)
        count = 0
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue
                    rel = key[len(prefix):].lstrip("/") if key != prefix else key.rsplit("/", 1)[-1]
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.s3.download_file(bucket, key, str(target))
                    count += 1
        except self.s3.exceptions.NoSuchBucket:
            raise JobFailed(f"{what}: bucket '{bucket}' does not exist ({uri})") from None
        except self.s3.exceptions.ClientError as exc:
            raise JobFailed(f"{what}: cannot download {uri} as the job's role: {_client_error(exc)}") from None
        if count == 0:
            raise JobFailed(f"{what}: no S3 objects found under {uri}")
        return count

    def upload(self, source: Path, uri: str) -> int:
        """Copy every file under a local folder to an S3 prefix."""
        bucket, prefix = split_s3(uri)
        count = 0
        for path in sorted(source.rglob("*")):
            if path.is_file():
                self.put(path, bucket, f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}")
                count += 1
        return count

    def put(self, path: Path, bucket: str, key: str) -> None:
        """Upload one file; a refusal is the job's failure."""
        try:
            self.s3.upload_file(str(path), bucket, key)
        except (self.s3.exceptions.ClientError, S3UploadFailedError) as exc:
            raise JobFailed(f"cannot upload to s3://{bucket}/{key} as the job's role: {_client_error(exc)}") from None

    # -- running --------------------------------------------------------------------------------
    def run(self, command: list[str], env: dict[str, str], cwd: str) -> None:
        """Run the script (cwd as the script sees it); its output goes to the job log, its stderr tail into a failure."""
        inherited = {key: value for key, value in os.environ.items() if key not in _NOT_INHERITED and not key.startswith("SM_")}
        full_env = {**inherited, **env, **self.credentials, "PYTHONUNBUFFERED": "1"}
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        root = str(self.local(CONTAINER_ROOT))
        with self.log_file.open("a", encoding="utf-8") as log:
            if self.isolation.real_paths:
                log.write(f"# /opt/ml is {root} (private mount namespace, {self.isolation.kind})\n")
            else:
                log.write(f"# {self.isolation.warning()}\n")
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            wrapped = _wrapped(self.isolation.kind, root, cwd, command)
            with subprocess.Popen(wrapped, cwd=self.folder if self.isolation.real_paths else cwd, env=full_env, stdout=log,
                                  stderr=subprocess.PIPE, start_new_session=True) as proc:
                deadline = time.monotonic() + self.timeout
                try:
                    for line in _lines_until(proc, deadline):
                        log.write(line)
                        tail.append(line.rstrip("\n"))
                except TimeoutError:
                    _kill(proc)
                    raise JobFailed(f"the script ran longer than {self.timeout:.0f} s and was stopped", "\n".join(tail)) from None
                finally:
                    if proc.poll() is None:
                        _kill(proc)
                code = proc.wait()
        if code != 0:
            reason = _failure_file(self) or next((line for line in reversed(tail) if line.strip()), "")
            raise JobFailed(f"the script exited with code {code}: {reason or 'no error output'}", "\n".join(tail))


def _client_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '') or exc}"
    return str(exc)


def _lines_until(proc: subprocess.Popen, deadline: float) -> Iterator[str]:  # type: ignore[type-arg]
    """Lines of the process's stderr as they come; TimeoutError past the deadline, even if it is silent."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    pending = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not sel.select(timeout=min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", "replace") + "\n"
    if pending:
        yield pending.decode("utf-8", "replace") + "\n"


def _kill(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _failure_file(job: Job) -> str:
    """SageMaker's convention: a job may explain its failure in /opt/ml/output/failure."""
    path = job.local("/opt/ml/output/failure")
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        return text.splitlines()[-1] if text else ""
    return ""


def _python(command: list[str]) -> list[str]:
    """`python3 script.py` in the definition runs with this interpreter (the image's Python here)."""
    if command and Path(command[0]).name.startswith("python"):
        return [sys.executable, *command[1:]]
    return command


def run_processing(request: dict[str, Any], *, s3: Any, folder: Path, timeout: float,
                   credentials: dict[str, str] | None = None) -> JobResult:
    """Run a resolved CreateProcessingJob request; returns its DescribeProcessingJob-like properties."""
    start = time.monotonic()
    job = Job(s3, folder, _limit(request, timeout), credentials)
    for item in request.get("ProcessingInputs", []):
        s3_input = item.get("S3Input")
        if s3_input:
            job.download(s3_input["S3Uri"], job.local(s3_input["LocalPath"]), f"input '{item.get('InputName')}'")
    outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for item in outputs:
        if item.get("S3Output"):
            job.local(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    app = request.get("AppSpecification", {})
    command = [job.map_text(part) for part in _python([*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])])]
    if not command:
        raise JobFailed("the processing job has no ContainerEntrypoint to run")
    env = {key: job.map_text(str(value)) for key, value in request.get("Environment", {}).items()}
    # What SageMaker writes for a processing container: the job's own request and the hosts.
    config_dir = job.local("/opt/ml/config")
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "processingjobconfig.json").write_text(json.dumps(request, default=str), encoding="utf-8")
    (config_dir / "resourceconfig.json").write_text(json.dumps({"current_host": HOST, "hosts": [HOST]}), encoding="utf-8")
    job.local("/opt/ml/output").mkdir(parents=True, exist_ok=True)
    job.run(command, env, cwd=str(job.folder))
    for item in outputs:
        if item.get("S3Output"):
            job.upload(job.local(item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
    return JobResult({**request, "ProcessingJobStatus": "Completed"}, job.log_file, time.monotonic() - start)


def _limit(request: dict[str, Any], timeout: float) -> float:
    return min(timeout, float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", timeout)))


def run_training(request: dict[str, Any], *, s3: Any, folder: Path, timeout: float,  # pylint: disable=too-many-locals
                 job_name: str, job_arn: str = "", credentials: dict[str, str] | None = None) -> JobResult:
    """Run a resolved CreateTrainingJob request in script mode; packs and uploads model.tar.gz."""
    start = time.monotonic()  # (one pass over the CreateTrainingJob request reads best)
    job = Job(s3, folder, _limit(request, timeout), credentials)
    raw_hps = {key: str(value) for key, value in request.get("HyperParameters", {}).items()}
    program, submit_dir = raw_hps.get("sagemaker_program"), raw_hps.get("sagemaker_submit_directory")
    if not program or not submit_dir:
        raise JobFailed("the training job is not in script mode (no sagemaker_program / sagemaker_submit_directory)")
    program = str(_decoded(program))
    code_dir = job.local("/opt/ml/code")
    bundle = job.folder / "code-bundle"
    job.download(_plain(submit_dir), bundle, "source bundle (sagemaker_submit_directory)")
    for archive in bundle.rglob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            tar.extractall(code_dir, filter="data")
    channels = {}
    for channel in request.get("InputDataConfig", []):
        name = channel["ChannelName"]
        job.download(channel["DataSource"]["S3DataSource"]["S3Uri"], job.local(f"/opt/ml/input/data/{name}"), f"channel '{name}'")
        channels[name] = channel
    config = _write_config(job, raw_hps, channels, request.get("ResourceConfig", {}))
    model_dir, output_data = job.local("/opt/ml/model"), job.local("/opt/ml/output/data")
    model_dir.mkdir(parents=True, exist_ok=True)
    output_data.mkdir(parents=True, exist_ok=True)
    job.local("/opt/ml/output/intermediate").mkdir(parents=True, exist_ok=True)
    toolkit = TrainingEnvironment(job, program=program, submit_dir=_plain(submit_dir), raw_hps=raw_hps, config=config,
                                  job_name=job_name)
    env = {key: job.map_text(str(value)) for key, value in request.get("Environment", {}).items()}
    env.update(toolkit.variables())
    env.update({"TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": job_arn})
    # As the toolkit runs a script entry point: `python <program> <args>` from the code folder.
    job.run([sys.executable, program, *toolkit.user_args()], env, cwd=job.seen("/opt/ml/code"))
    output_path = str(request.get("OutputDataConfig", {}).get("S3OutputPath", "")).rstrip("/")
    bucket, prefix = split_s3(f"{output_path}/{job_name}/output")
    model_tar = job.folder / "model.tar.gz"
    _pack(model_dir, model_tar)
    job.put(model_tar, bucket, f"{prefix}/model.tar.gz")
    if any(output_data.iterdir()):
        _pack(output_data, job.folder / "output.tar.gz")
        job.put(job.folder / "output.tar.gz", bucket, f"{prefix}/output.tar.gz")
    properties = {**request, "TrainingJobName": job_name, "TrainingJobStatus": "Completed",
                  "ModelArtifacts": {"S3ModelArtifacts": f"s3://{bucket}/{prefix}/model.tar.gz"}}
    return JobResult(properties, job.log_file, time.monotonic() - start)


def _write_config(job: Job, raw_hps: dict[str, str], channels: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    """The files SageMaker writes under /opt/ml/input/config for a training job; returns what they hold."""
    config_dir = job.local("/opt/ml/input/config")
    config_dir.mkdir(parents=True, exist_ok=True)
    instance_type = str(resources.get("InstanceType", "local"))
    resource_config = {"current_host": HOST, "current_instance_type": instance_type, "current_group_name": INSTANCE_GROUP,
                       "hosts": [HOST], "instance_groups": [{"instance_group_name": INSTANCE_GROUP, "instance_type": instance_type,
                                                             "hosts": [HOST]}],
                       "network_interface_name": "eth0"}
    input_data_config = {
        name: {**({"ContentType": ch["ContentType"]} if ch.get("ContentType") else {}), "TrainingInputMode": "File",
               "S3DistributionType": ch["DataSource"]["S3DataSource"].get("S3DataDistributionType", "FullyReplicated"),
               "RecordWrapperType": ch.get("RecordWrapperType", "None")}
        for name, ch in channels.items()}
    files = {"hyperparameters.json": raw_hps, "resourceconfig.json": resource_config, "inputdataconfig.json": input_data_config}
    for name, content in files.items():
        (config_dir / name).write_text(json.dumps(content), encoding="utf-8")
    return {"resource_config": resource_config, "input_data_config": input_data_config}


# The hyperparameters the training toolkit keeps for itself (sagemaker_training.params.SAGEMAKER_HYPERPARAMETERS).
_TOOLKIT_HYPERPARAMETERS = ("sagemaker_program", "sagemaker_submit_directory", "sagemaker_enable_cloudwatch_metrics",
                            "sagemaker_region", "sagemaker_container_log_level", "sagemaker_job_name",
                            "default_user_module_name", "_tuning_objective_metric", "sagemaker_s3_output")


@dataclass
class TrainingEnvironment:  # pylint: disable=too-many-instance-attributes  # the toolkit's environment, one field each
    """The script-mode environment of the SageMaker training toolkit (`sagemaker_training.environment`).

    The variables are `Environment.to_env_vars()`: `SM_` + the upper-cased property name, strings as they
    are and anything else as compact, key-sorted JSON; the script's arguments are `to_cmd_args()` of the
    user hyperparameters (sorted, `--name value`, each value `str()` of its JSON-decoded form).
    """

    job: Job
    program: str
    submit_dir: str
    raw_hps: dict[str, str]
    config: dict[str, Any]
    job_name: str

    def __post_init__(self) -> None:
        decoded = {key: _decoded(value) for key, value in self.raw_hps.items()}
        framework = {k: v for k, v in decoded.items() if k in _TOOLKIT_HYPERPARAMETERS or k.startswith("sagemaker_")}
        self.hyperparameters = {k: v for k, v in decoded.items() if k not in framework}
        self.framework_params = {k: v for k, v in framework.items() if k not in _TOOLKIT_HYPERPARAMETERS}
        self.log_level = framework.get("sagemaker_container_log_level", 20)
        self.region = str(framework.get("sagemaker_region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", ""))

    def user_args(self) -> list[str]:
        """`mapping.to_cmd_args(hyperparameters)`."""
        args = []
        for key in sorted(self.hyperparameters):
            value = self.hyperparameters[key]
            args.append(f"--{key}" if len(key) > 1 else f"-{key}")
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())) if isinstance(value, dict) else
                        "" if value is None else str(value))
        return args

    def properties(self) -> dict[str, Any]:
        """`dict(Environment())`: what SM_TRAINING_ENV holds."""
        seen, resource = self.job.seen, self.config["resource_config"]
        channels = self.config["input_data_config"]
        group = {INSTANCE_GROUP: resource["instance_groups"][0]}
        return {
            "additional_framework_parameters": self.framework_params,
            "channel_input_dirs": {name: seen(f"/opt/ml/input/data/{name}") for name in channels},
            "current_host": HOST, "current_instance_group": INSTANCE_GROUP, "current_instance_group_hosts": [HOST],
            "current_instance_type": resource["current_instance_type"], "distribution_hosts": [],
            "distribution_instance_groups": [], "framework_module": None, "hosts": [HOST],
            "hyperparameters": self.hyperparameters, "input_config_dir": seen("/opt/ml/input/config"),
            "input_data_config": channels, "input_dir": seen("/opt/ml/input"), "instance_groups": [INSTANCE_GROUP],
            "instance_groups_dict": group, "is_hetero": False, "is_master": True, "is_modelparallel_enabled": None,
            "job_name": self.job_name, "log_level": self.log_level, "master_hostname": HOST,
            "model_dir": seen("/opt/ml/model"), "module_dir": self.submit_dir,
            "module_name": self.program[:-3] if self.program.endswith(".py") else self.program,
            "network_interface_name": "eth0", "num_cpus": os.cpu_count() or 1, "num_gpus": 0,
            "output_data_dir": seen("/opt/ml/output/data"), "output_dir": seen("/opt/ml/output"),
            "output_intermediate_dir": seen("/opt/ml/output/intermediate"), "resource_config": resource,
            "user_entry_point": self.program,
        }

    def variables(self) -> dict[str, str]:
        """`Environment.to_env_vars()`, and what the toolkit puts in its own environment before it runs the script."""
        props = self.properties()
        keys = ("hosts", "network_interface_name", "user_entry_point", "resource_config", "input_data_config",
                "output_data_dir", "current_host", "current_instance_type", "current_instance_group",
                "current_instance_group_hosts", "instance_groups", "instance_groups_dict", "distribution_instance_groups",
                "is_hetero", "module_name", "log_level", "framework_module", "input_dir", "input_config_dir", "output_dir",
                "num_cpus", "num_gpus", "model_dir", "module_dir", "output_intermediate_dir")
        mapping: dict[str, Any] = {key: props[key] for key in keys}
        mapping.update({"hps": self.hyperparameters, "framework_params": self.framework_params,
                        "channels": sorted(props["channel_input_dirs"]), "training_env": props, "user_args": self.user_args()})
        mapping.update({f"channel_{name}": path for name, path in props["channel_input_dirs"].items()})
        mapping.update({f"hp_{key}": value for key, value in self.hyperparameters.items()})
        env = {f"SM_{key.upper()}": _env_value(value) for key, value in mapping.items()}
        env.update({"CURRENT_HOST": HOST, "SAGEMAKER_REGION": self.region, "SAGEMAKER_JOB_NAME": ""})
        return env


def _env_value(value: Any) -> str:
    """`mapping.to_env_vars`'s value format."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _plain(value: str) -> str:
    """Script-mode values may be JSON-encoded strings ("\\"s3://...\\"")."""
    decoded = _decoded(value)
    return decoded if isinstance(decoded, str) else value


def _decoded(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _pack(folder: Path, archive: Path) -> None:
    """A tar.gz of a folder's contents with relative names, as SageMaker packs /opt/ml/model."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
