"""Writing a model's pipelines: upload the model repository's sources once, then create or update the
pipeline of each tenant that trains the model (one pipeline per tenant and model, the same definition).

`mlops pipeline upsert` and `mlops train --repo` call `upsert`; `contract_of` and `definition` serve
`mlops pipeline definition` too. The SageMaker SDK is imported only when a definition is built
(`mlops.pipeline.builder`); AWS calls go through `mlops.aws.sagemaker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError


def contract_of(repo: Path, model: str | None) -> Any:
    """The model repository's contract (`mlops.yaml`); `model`, when given, must be the one it names."""
    from mlops.config.contract import load_contract

    contract = load_contract(repo)
    if model is not None and model != contract.model:
        raise MlopsError(f"--model {model} does not match model '{contract.model}' in {repo / 'mlops.yaml'}",
                         "pass the model repository of that model")
    return contract


def definition(contract: Any, pipeline_name: str) -> str:
    """The pipeline definition JSON of a contract (tenant values are parameters, never baked in)."""
    from mlops.pipeline.builder import definition_json

    return definition_json(contract, pipeline_name=pipeline_name)


def upload_sources(session: Any, names: Any, repo: Path, model: str) -> tuple[str, str]:
    """Upload the model repo's source bundle to the artifacts bucket; (code URI, digest)."""
    from mlops.aws import sagemaker as adapter
    from mlops.pipeline.source import bundle

    try:
        sources = bundle(repo)
    except ValueError as exc:
        raise MlopsError(str(exc)) from None
    code_uri = adapter.upload_source_bundle(session.client("s3"), bucket=names.artifacts_bucket(), model=model, bundle=sources)
    return code_uri, sources.digest


def pipeline_tenants(registry: Any, model: str, tenants: Sequence[str] | None) -> list[Any]:
    """The tenants whose pipeline of `model` to write: the given ones (checked), else every enabled subscriber."""
    if tenants:
        return [registry.check_model(tenant_id, model) for tenant_id in dict.fromkeys(tenants)]
    return [t for _, t in sorted(registry.tenants.items()) if t.enabled and model in t.models]


def upsert(session: Any, registry: Any, repo: Path, model: str | None, tenants: Sequence[str] | None = None) -> dict[str, Any]:
    """Upload the sources once, then create or update the model's pipeline of each tenant (same definition).

    Returns `{"model", "code_uri", "pipelines": [{"tenant", "pipeline", "pipeline_arn", "created"}]}`."""
    from mlops.aws import sagemaker as adapter
    from mlops.pipeline.parameters import pipeline_role_arn
    from mlops.pipeline.start import account_id

    contract = contract_of(repo, model)
    if contract.project != registry.platform.project:
        raise MlopsError(f"{repo / 'mlops.yaml'} belongs to project '{contract.project}', "
                         f"this platform is '{registry.platform.project}'", "fix `project` in mlops.yaml")
    if contract.model not in registry.platform.models:
        raise MlopsError(f"model '{contract.model}' is not in platform.yaml", f"known models: {', '.join(registry.platform.models)}")
    targets = pipeline_tenants(registry, contract.model, tenants)  # check every tenant before writing anything
    names = registry.names(account_id(session))
    code_uri, digest = upload_sources(session, names, repo, contract.model)
    adapter.write_code_pointer(session.client("s3"), bucket=names.artifacts_bucket(), model=contract.model,
                               code_uri=code_uri, digest=digest)
    # The definition names no tenant (tenants differ by execution parameters): build it once.
    built = definition(contract, names.pipeline(targets[0].id, contract.model)) if targets else ""
    sm = session.client("sagemaker")
    pipelines = []
    for tenant in targets:
        name = names.pipeline(tenant.id, contract.model)
        arn, created = adapter.upsert_pipeline(
            # Each tenant's pipeline runs as that tenant's pipeline role: it can pass no other tenant's step role.
            sm, name=name, definition=built, role_arn=pipeline_role_arn(names, tenant.id),
            description=f"{contract.model} of {tenant.id}: {contract.description}"[:3072],
            tags={**tenant.cost_tags(contract.project), "mlops:model": contract.model},
        )
        pipelines.append({"tenant": tenant.id, "pipeline": name, "pipeline_arn": arn, "created": created})
    return {"model": contract.model, "code_uri": code_uri, "pipelines": pipelines}
