"""The SageMaker pipeline of a model, built with the SageMaker Python SDK (the only module that imports it).

One definition per model serves every tenant: whatever differs between tenants or runs is a pipeline
parameter (see `mlops.pipeline.parameters`); what is fixed for the model (its scripts, hyperparameters,
metric and threshold from `mlops.yaml`) is a plain argument at build time.

    Preprocess (processing)          raw tenant data  -> one split per channel, and test
        |
    Train (training, script mode)    the channels (train, validation by default) -> model.tar.gz
        |
    Evaluate (processing)            model + test -> evaluation.json (property file EvaluationReport)
        |
    CheckMetric (condition)          the metric's value (mlops.evaluation.metric_path, e.g.
        |                            regression_metrics.rmse.value) >= threshold (maximize) or <= (minimize)
        |-- true:  Register-RegisterModel   model package in the tenant's group, with the evaluation
        |                                   report as model metrics and version/digest/commit metadata
        '-- false: MetricNotMet (fail)      "<name> = <value> does not meet the threshold ..."

Processing scripts get the arguments `mlops.yaml` declares for them and nothing else; the training script
gets its hyperparameters, as SageMaker passes them. The scripts run as code, not baked into the definition:
`CodeUri` points at the uploaded source bundle
(`sourcedir.tar.gz` for training, as script mode expects, and the unpacked files under `src/` for the
processing steps). Building the definition makes no AWS call: the session it builds with (unless one is
given) refuses to send any request, so a change in the SDK can never reach an AWS account while building.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlops.config.contract import ModelContract
from mlops.errors import MlopsError
from mlops.pipeline import parameters as P

PROCESSING_CODE_DIR = "/opt/ml/processing/input/code"
CODE_CHANNEL = "code"
EVALUATION_REPORT = "EvaluationReport"
EVALUATION_FILE = "evaluation.json"
REGISTER_STEP = "Register"
FAIL_STEP = "MetricNotMet"
DEFAULT_INFERENCE_INSTANCES = ("ml.t2.medium", "ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge")

# The container paths of the model contract (docs/model-contract.md). The scripts see them as they are; the
# variables name them too, for scripts that take their folders from the environment.
PREPROCESS_ENV = {
    "MLOPS_PROCESSING_INPUT": "/opt/ml/processing/input/data",
    "MLOPS_PROCESSING_OUTPUT": "/opt/ml/processing/output",
}
EVALUATE_ENV = {
    "MLOPS_PROCESSING_MODEL": "/opt/ml/processing/model",
    "MLOPS_PROCESSING_TEST": "/opt/ml/processing/test",
    "MLOPS_PROCESSING_EVALUATION": "/opt/ml/processing/evaluation",
}
TEST_SPLIT = "test"

_SDK_CONFIG = """\
# Written by mlops: the SageMaker SDK's defaults file, only to opt out of its telemetry.
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def _quiet_sdk_environment() -> None:
    """Opt out of telemetry and the v2 banner before the SDK is imported (it reads both at import)."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    if "SAGEMAKER_USER_CONFIG_OVERRIDE" not in os.environ:
        path = Path(tempfile.gettempdir()) / f"mlops-sagemaker-config-{os.getuid()}.yaml"
        if not path.is_file() or path.read_text(encoding="utf-8") != _SDK_CONFIG:
            path.write_text(_SDK_CONFIG, encoding="utf-8")
        os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(path)
    # "Not applying SDK defaults from ..." and "Popping out 'TrainingJobName' ..." are expected: the
    # job names are set by SageMaker at run time, and we keep no admin defaults file.
    for name, level in (
        ("sagemaker.config", logging.WARNING),
        ("sagemaker.telemetry", logging.ERROR),
        ("sagemaker.workflow.utilities", logging.ERROR),
        ("sagemaker.workflow._utils", logging.ERROR),
        ("sagemaker.image_uris", logging.WARNING),
    ):
        logging.getLogger(name).setLevel(level)


def _validate_sdk_config_once() -> None:
    """Make the SDK validate its defaults file once instead of on every lookup.

    SDK 2.x re-checks the whole JSON schema each time it reads a config value (about 0.2 s each, 60 reads
    per definition): with the telemetry opt-out file in place a definition took 5 s. The same config is
    still validated, the first time it is seen.
    """
    import sagemaker.utils

    current = sagemaker.utils.validate_sagemaker_config
    if getattr(current, "mlops_memoized", False):
        return
    seen: set[str] = set()

    def validate(config: dict | None = None) -> None:
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in seen:
            current(config)
            seen.add(key)

    validate.mlops_memoized = True  # type: ignore[attr-defined]
    sagemaker.utils.validate_sagemaker_config = validate


@contextmanager
def _sdk_imported() -> Iterator[None]:
    """Import the SDK without letting it reconfigure logging (sagemaker.experiments calls basicConfig)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    _quiet_sdk_environment()
    # With a handler in place, the SDK's logging.basicConfig(level=INFO) at import is a no-op.
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        with warnings.catch_warnings():
            # The SDK warns about its own v2 deprecation at import (SAGEMAKER_SUPPRESS_V2_WARNING covers the
            # print only), and that a PipelineSession starts no job: building a definition is the point.
            warnings.filterwarnings("ignore", message=".*SageMaker Python SDK v2.*")
            warnings.filterwarnings("ignore", message="Running within a PipelineSession", category=UserWarning)
            import sagemaker.workflow.pipeline  # noqa: F401  # pylint: disable=unused-import

            root.removeHandler(placeholder)
            _validate_sdk_config_once()
            yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def get_pipeline(
    contract: ModelContract,
    *,
    pipeline_name: str,
    session: Any = None,
    volume_size_gb: int = 30,
    max_runtime_seconds: int = 3 * 3600,
    inference_instances: tuple[str, ...] = DEFAULT_INFERENCE_INSTANCES,
) -> Any:
    """The pipeline of a model repository (a `sagemaker.workflow.pipeline.Pipeline`).

    `contract` fixes the scripts, hyperparameters, metric and threshold; nothing tenant-specific is an
    argument here. `session` is a `PipelineSession` (one with a placeholder bucket is made if omitted;
    nothing is uploaded by the SDK).
    """
    with _sdk_imported():
        return _build(contract, pipeline_name, session, volume_size_gb, max_runtime_seconds, inference_instances)


def _build(  # pylint: disable=too-many-locals  # one local per step and parameter reads best here
    contract: ModelContract,
    pipeline_name: str,
    session: Any,
    volume_size_gb: int,
    max_runtime_seconds: int,
    inference_instances: tuple[str, ...],
) -> Any:
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.model import Model
    from sagemaker.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.model_step import ModelStep
    from sagemaker.workflow.parameters import ParameterInteger, ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep

    if session is None:
        # A placeholder bucket: the SDK would otherwise ask STS/S3 for its default bucket; every output
        # path below is explicit, so nothing is ever written there.
        session = PipelineSession(boto_session=_offline_session(), default_bucket="mlops-unused-default-bucket")
    params = {
        name: ParameterInteger(name=name, default_value=1) if kind == "Integer" else ParameterString(name=name)
        for name, kind in P.PARAMETERS.items()
    }
    params[P.APPROVAL_STATUS] = ParameterString(name=P.APPROVAL_STATUS, default_value="PendingManualApproval")
    execution_id = ExecutionVariables.PIPELINE_EXECUTION_ID

    def run_path(*parts: str) -> Any:
        return Join(on="/", values=[params[P.OUTPUT_URI], execution_id, *parts])

    code_prefix = Join(on="/", values=[params[P.CODE_URI], P.SOURCE_FOLDER])
    code_bundle = Join(on="/", values=[params[P.CODE_URI], P.SOURCE_BUNDLE])
    tags = [{"Key": "mlops:project", "Value": contract.project}, {"Key": "mlops:model", "Value": contract.model},
            {"Key": "mlops:tenant", "Value": params[P.TENANT_ID]}, {"Key": "mlops:tier", "Value": params[P.TIER]},
            {"Key": "mlops:model-version", "Value": params[P.MODEL_VERSION]}]
    splits = [*contract.channels, *([] if TEST_SPLIT in contract.channels else [TEST_SPLIT])]

    def processor(script: str, env: dict[str, str], arguments: list[str]) -> Any:
        return Processor(
            role=params[P.ROLE_ARN], image_uri=params[P.IMAGE_URI], instance_count=1, instance_type=params[P.INSTANCE_TYPE],
            entrypoint=["python3", f"{PROCESSING_CODE_DIR}/{script}", *arguments], env=env, volume_size_in_gb=volume_size_gb,
            max_runtime_in_seconds=max_runtime_seconds, sagemaker_session=session, tags=tags,
        )

    code_input = ProcessingInput(source=code_prefix, destination=PROCESSING_CODE_DIR, input_name=CODE_CHANNEL)

    preprocessor = processor(contract.entry_points.preprocess, PREPROCESS_ENV, contract.arguments.preprocess)
    preprocess = ProcessingStep("Preprocess", step_args=preprocessor.run(
        inputs=[ProcessingInput(source=params[P.INPUT_DATA_URI], destination=PREPROCESS_ENV["MLOPS_PROCESSING_INPUT"], input_name="data"),
                code_input],
        outputs=[ProcessingOutput(output_name=split, source=f"{PREPROCESS_ENV['MLOPS_PROCESSING_OUTPUT']}/{split}",
                                  destination=run_path("preprocess", split)) for split in splits],
    ))
    # Step properties are built from the API shapes at run time, so pylint cannot see their members.
    outputs = preprocess.properties.ProcessingOutputConfig.Outputs  # pylint: disable=no-member
    split_uri = {split: outputs[split].S3Output.S3Uri for split in splits}

    # Script mode: the training image's toolkit unpacks sagemaker_submit_directory and runs
    # sagemaker_program; every other hyperparameter is JSON-encoded, as the SDK's framework estimators do.
    hyperparameters: dict[str, Any] = {"sagemaker_program": contract.entry_points.train, "sagemaker_submit_directory": code_bundle}
    hyperparameters.update({key: json.dumps(value) for key, value in contract.hyperparameters.items()})
    estimator = Estimator(
        image_uri=params[P.IMAGE_URI], role=params[P.ROLE_ARN], instance_count=params[P.INSTANCE_COUNT],
        instance_type=params[P.INSTANCE_TYPE], volume_size=volume_size_gb, max_run=max_runtime_seconds,
        output_path=run_path("train"), hyperparameters=hyperparameters, disable_profiler=True, debugger_hook_config=False,
        sagemaker_session=session, tags=tags,
    )
    train = TrainingStep("Train", step_args=estimator.fit({
        channel: TrainingInput(split_uri[channel], content_type="text/csv") for channel in contract.channels}))
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts  # pylint: disable=no-member  # API shape, see above

    report = PropertyFile(name=EVALUATION_REPORT, output_name="evaluation", path=EVALUATION_FILE)
    evaluator = processor(contract.entry_points.evaluate, EVALUATE_ENV, contract.arguments.evaluate)
    evaluate = ProcessingStep("Evaluate", property_files=[report], step_args=evaluator.run(
        inputs=[ProcessingInput(source=model_uri, destination=EVALUATE_ENV["MLOPS_PROCESSING_MODEL"], input_name="model"),
                ProcessingInput(source=split_uri[TEST_SPLIT], destination=EVALUATE_ENV["MLOPS_PROCESSING_TEST"], input_name="test"),
                code_input],
        outputs=[ProcessingOutput(output_name="evaluation", source=EVALUATE_ENV["MLOPS_PROCESSING_EVALUATION"],
                                  destination=run_path("evaluation"))],
    ))
    evaluation_uri = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri  # pylint: disable=no-member
    report_uri = Join(on="/", values=[evaluation_uri, EVALUATION_FILE])
    metric = contract.metric
    metric_value = JsonGet(step_name=evaluate.name, property_file=report, json_path=metric.json_path)

    model = Model(image_uri=params[P.IMAGE_URI], model_data=model_uri, role=params[P.ROLE_ARN], sagemaker_session=session,
                  env={"SAGEMAKER_PROGRAM": contract.entry_points.inference, "SAGEMAKER_SUBMIT_DIRECTORY": code_bundle})
    register = ModelStep(REGISTER_STEP, step_args=model.register(
        content_types=["text/csv", "application/json"], response_types=["application/json"],
        inference_instances=list(inference_instances), transform_instances=list(inference_instances),
        model_package_group_name=params[P.MODEL_PACKAGE_GROUP], approval_status=params[P.APPROVAL_STATUS],
        description=Join(on=" ", values=[contract.model, params[P.MODEL_VERSION], "for tenant", params[P.TENANT_ID]]),
        model_metrics=ModelMetrics(model_statistics=MetricsSource(s3_uri=report_uri, content_type="application/json")),
        customer_metadata_properties={
            "semantic_version": params[P.MODEL_VERSION], "image_digest": params[P.IMAGE_DIGEST],
            "git_commit": params[P.GIT_COMMIT], "tenant": params[P.TENANT_ID], "tier": params[P.TIER],
            "metric_name": metric.name, "metric_direction": metric.direction, "metric_threshold": str(metric.threshold),
            "metric_min_improvement": str(metric.min_improvement), "metric_path": metric.json_path,
            "metric_value": Join(on="", values=[metric_value]),
            "pipeline_execution_arn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
        },
    ))
    maximize = metric.direction == "maximize"
    condition_class = ConditionGreaterThanOrEqualTo if maximize else ConditionLessThanOrEqualTo
    fail = FailStep(FAIL_STEP, error_message=Join(on="", values=[
        f"{metric.name} = ", metric_value,
        f" does not meet the threshold ({'>=' if maximize else '<='} {metric.threshold}); the model was not registered",
    ]))
    check = ConditionStep("CheckMetric", conditions=[condition_class(left=metric_value, right=metric.threshold)],
                          if_steps=[register], else_steps=[fail])
    return Pipeline(name=pipeline_name, parameters=list(params.values()), steps=[preprocess, train, evaluate, check],
                    sagemaker_session=session)


def definition_json(contract: ModelContract, *, pipeline_name: str, **build_args: Any) -> str:
    """The pipeline definition JSON, built with no way to reach AWS (the session refuses to send a request)."""
    with _sdk_imported():
        return get_pipeline(contract, pipeline_name=pipeline_name, **build_args).definition()


def _offline_session() -> Any:
    """A boto3 session that refuses to send any request: a change in the SDK never reaches AWS."""
    import boto3  # pylint: disable=import-outside-toplevel  # with the SDK only

    session = boto3.Session(region_name=os.environ.get("AWS_REGION", "us-east-1"))
    session.events.register("before-send", _refuse_request)
    return session


def _refuse_request(request: Any = None, **_: Any) -> None:
    """botocore's `before-send` hook of the building session: building a definition sends nothing to AWS."""
    url = getattr(request, "url", "AWS")
    raise MlopsError(f"building the pipeline definition tried to call {url}",
                     "the SageMaker SDK changed what it does while building: nothing was sent; report it")
