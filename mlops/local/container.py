"""The SageMaker container contract, played by a subprocess on this machine (no Docker).

A processing or training job of the definition (its resolved CreateProcessingJob / CreateTrainingJob
request) runs here as `sys.executable <script>`, with `/opt/ml/...` mapped under a job folder, the inputs
downloaded from S3 and the outputs uploaded to S3 through the given boto3 client, and, for training, the
script-mode environment (`SM_*` variables, `hyperparameters.json`, channels, `model.tar.gz`) that the
SageMaker training toolkit provides. A job that exits non-zero, times out or cannot find its inputs raises
`JobFailed` with a readable reason (the script's last stderr line, as SageMaker shows its failure reason).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tarfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTAINER_ROOT = "/opt/ml"
HOST = "algo-1"
STDERR_TAIL_LINES = 20


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


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise JobFailed(f"'{uri}' is not an S3 URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class Job:
    """One job's folder: `/opt/ml/...` paths of the request live under `<folder>/opt/ml/...`."""

    def __init__(self, s3: Any, folder: Path, timeout: float):
        self.s3 = s3
        self.folder = folder
        self.timeout = timeout
        folder.mkdir(parents=True, exist_ok=True)
        self.log_file = folder / "job.log"

    def local(self, container_path: str) -> Path:
        """The local folder standing in for a container path."""
        if not container_path.startswith(CONTAINER_ROOT):
            raise JobFailed(f"container path '{container_path}' is outside {CONTAINER_ROOT}")
        return self.folder / container_path.lstrip("/")

    def map_text(self, value: str) -> str:
        """Rewrite a container path inside an argument or variable to its local folder."""
        return str(self.local(value)) if value.startswith(CONTAINER_ROOT) else value

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
        if count == 0:
            raise JobFailed(f"{what}: no S3 objects found under {uri}")
        return count

    def upload(self, source: Path, uri: str) -> int:
        """Copy every file under a local folder to an S3 prefix."""
        bucket, prefix = split_s3(uri)
        count = 0
        for path in sorted(source.rglob("*")):
            if path.is_file():
                key = f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}"
                self.s3.upload_file(str(path), bucket, key)
                count += 1
        return count

    # -- running --------------------------------------------------------------------------------
    def run(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        """Run the script; its output goes to the job log, its stderr tail into a failure."""
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        with self.log_file.open("a", encoding="utf-8") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            with subprocess.Popen(command, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.PIPE,
                                  start_new_session=True) as proc:
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


def run_processing(request: dict[str, Any], *, s3: Any, folder: Path, timeout: float) -> JobResult:
    """Run a resolved CreateProcessingJob request; returns its DescribeProcessingJob-like properties."""
    start = time.monotonic()
    job = Job(s3, folder, min(timeout, float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", timeout))))
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
    job.local("/opt/ml/output").mkdir(parents=True, exist_ok=True)
    job.run(command, env, cwd=job.folder)
    for item in outputs:
        if item.get("S3Output"):
            job.upload(job.local(item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
    return JobResult({**request, "ProcessingJobStatus": "Completed"}, job.log_file, time.monotonic() - start)


def run_training(request: dict[str, Any], *, s3: Any, folder: Path, timeout: float,  # pylint: disable=too-many-locals
                 job_name: str) -> JobResult:  # (one pass over the CreateTrainingJob request reads best)
    """Run a resolved CreateTrainingJob request in script mode; packs and uploads model.tar.gz."""
    start = time.monotonic()
    job = Job(s3, folder, min(timeout, float(request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", timeout))))
    raw_hps = {key: str(value) for key, value in request.get("HyperParameters", {}).items()}
    program, submit_dir = raw_hps.get("sagemaker_program"), raw_hps.get("sagemaker_submit_directory")
    if not program or not submit_dir:
        raise JobFailed("the training job is not in script mode (no sagemaker_program / sagemaker_submit_directory)")
    code_dir = job.local("/opt/ml/code")
    bundle = job.local("/opt/ml/input/code-bundle")
    job.download(_plain(submit_dir), bundle, "source bundle (sagemaker_submit_directory)")
    for archive in bundle.rglob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            tar.extractall(code_dir, filter="data")
    channels = {}
    for channel in request.get("InputDataConfig", []):
        name = channel["ChannelName"]
        path = job.local(f"/opt/ml/input/data/{name}")
        job.download(channel["DataSource"]["S3DataSource"]["S3Uri"], path, f"channel '{name}'")
        channels[name] = channel
    resources = request.get("ResourceConfig", {})
    _write_config(job, raw_hps, channels, resources)
    model_dir, output_data = job.local("/opt/ml/model"), job.local("/opt/ml/output/data")
    model_dir.mkdir(parents=True, exist_ok=True)
    output_data.mkdir(parents=True, exist_ok=True)
    user_hps = {key: _decoded(value) for key, value in raw_hps.items() if not key.startswith("sagemaker_")}
    env = _training_env(job, program, submit_dir, user_hps, list(channels), resources)
    args = [part for key, value in user_hps.items() for part in (f"--{key}", _arg(value))]
    job.run([sys.executable, str(code_dir / program), *args], env, cwd=code_dir)
    output_path = str(request.get("OutputDataConfig", {}).get("S3OutputPath", "")).rstrip("/")
    bucket, prefix = split_s3(f"{output_path}/{job_name}/output")
    model_tar = job.folder / "model.tar.gz"
    _pack(model_dir, model_tar)
    s3.upload_file(str(model_tar), bucket, f"{prefix}/model.tar.gz")
    if any(output_data.iterdir()):
        _pack(output_data, job.folder / "output.tar.gz")
        s3.upload_file(str(job.folder / "output.tar.gz"), bucket, f"{prefix}/output.tar.gz")
    properties = {**request, "TrainingJobName": job_name, "TrainingJobStatus": "Completed",
                  "ModelArtifacts": {"S3ModelArtifacts": f"s3://{bucket}/{prefix}/model.tar.gz"}}
    return JobResult(properties, job.log_file, time.monotonic() - start)


def _write_config(job: Job, raw_hps: dict[str, str], channels: dict[str, Any], resources: dict[str, Any]) -> None:
    """The files SageMaker writes under /opt/ml/input/config for a training job."""
    config_dir = job.local("/opt/ml/input/config")
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(raw_hps), encoding="utf-8")
    (config_dir / "resourceconfig.json").write_text(json.dumps(
        {"current_host": HOST, "hosts": [HOST], "current_instance_type": resources.get("InstanceType", "local")}), encoding="utf-8")
    (config_dir / "inputdataconfig.json").write_text(json.dumps(
        {name: {"ContentType": ch.get("ContentType", ""), "TrainingInputMode": "File", "RecordWrapperType": "None",
                "S3DistributionType": ch["DataSource"]["S3DataSource"].get("S3DataDistributionType", "FullyReplicated")}
         for name, ch in channels.items()}), encoding="utf-8")


def _training_env(job: Job, program: str, submit_dir: str, hps: dict[str, Any], channels: list[str],
                  resources: dict[str, Any]) -> dict[str, str]:
    """The variables the SageMaker training toolkit sets for a script-mode program."""
    env = {
        "SM_MODEL_DIR": str(job.local("/opt/ml/model")),
        "SM_INPUT_DIR": str(job.local("/opt/ml/input")),
        "SM_INPUT_CONFIG_DIR": str(job.local("/opt/ml/input/config")),
        "SM_INPUT_DATA_DIR": str(job.local("/opt/ml/input/data")),
        "SM_OUTPUT_DIR": str(job.local("/opt/ml/output")),
        "SM_OUTPUT_DATA_DIR": str(job.local("/opt/ml/output/data")),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(job.local("/opt/ml/output/intermediate")),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hps),
        "SM_USER_ARGS": json.dumps([part for key, value in hps.items() for part in (f"--{key}", _arg(value))]),
        "SM_CURRENT_HOST": HOST,
        "SM_HOSTS": json.dumps([HOST]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_MODULE_NAME": Path(program).stem,
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_DIR": _plain(submit_dir),
        "SM_CURRENT_INSTANCE_TYPE": str(resources.get("InstanceType", "local")),
        "SM_LOG_LEVEL": "20",
    }
    env.update({f"SM_CHANNEL_{name.upper()}": str(job.local(f"/opt/ml/input/data/{name}")) for name in channels})
    env.update({f"SM_HP_{key.upper()}": _arg(value) for key, value in hps.items()})
    return env


def _plain(value: str) -> str:
    """Script-mode values may be JSON-encoded strings ("\\"s3://...\\"")."""
    decoded = _decoded(value)
    return decoded if isinstance(decoded, str) else value


def _decoded(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _arg(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _pack(folder: Path, archive: Path) -> None:
    """A tar.gz of a folder's contents with relative names, as SageMaker packs /opt/ml/model."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
