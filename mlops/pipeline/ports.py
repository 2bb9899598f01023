"""The pipeline ports of the build use cases (`mlops.build_ports`): start an execution for a BuildRequest, find one
already started, read an execution's status. `mlops.builds.wiring.pipeline_ports` loads them for the handlers.

They wire the trigger to the pipeline start (`mlops.pipeline.start`) and the SageMaker adapter
(`mlops.aws.sagemaker`); keeping them here, not in the adapter, keeps the adapter free of a dependency on the
start logic. Nothing here imports the SageMaker SDK, so the Lambda handlers can load it.
"""

from __future__ import annotations

import threading
from typing import Any

_LOCAL = threading.local()


def _session() -> Any:
    """One boto3 session per thread (sessions are not thread-safe), kept for the life of the process: its
    clients and the account it belongs to are made or asked once, not for every start."""
    if getattr(_LOCAL, "session", None) is None:
        import boto3

        _LOCAL.session = boto3.session.Session()
    return _LOCAL.session


def start_execution(request: Any, client_request_token: str) -> str:
    """The pipeline start port (a BuildRequest and its token -> execution ARN)."""
    from mlops.pipeline.start import start_for_request

    return start_for_request(request, client_request_token, session=_session()).arn


def find_execution(request: Any) -> str | None:
    """The find port: the execution already started for a BuildRequest, if any."""
    import boto3

    from mlops.aws.sagemaker import find_execution_by_display_name
    from mlops.pipeline.start import pipeline_names

    names = pipeline_names()
    return find_execution_by_display_name(boto3.client("sagemaker"), pipeline=names.pipeline(request.tenant, request.model),
                                          display_name=request.execution_id)


def execution_status(execution_arn: str) -> str | None:
    """The status port: an execution's status as SageMaker has it now (DescribePipelineExecution)."""
    from mlops.aws.sagemaker import describe_execution

    return describe_execution(_session().client("sagemaker"), execution_arn).get("PipelineExecutionStatus")
