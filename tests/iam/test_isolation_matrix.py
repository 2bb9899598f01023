"""Tenant isolation proven on the planned policies with AWS's evaluation logic (policy_matrix says how).

Six tenants on all tiers with a prefix pair (acme, acme-eu); every role the plan gives a tenant (its job,
pipeline, inference and deploy roles, found by tag or by the naming module's names) against every data,
model, key, registry, execution, role, endpoint, ledger and image request on every other tenant's resources:
no allow except the intended one (pulling the shared model images). The controls keep the matrix honest:
each tenant role is allowed what it exists for on its own tenant (else "all denied" would prove nothing), and
an ARN widened in a copy of a policy (`...acme*`, which matches acme-eu) is caught by the same check. The
shared platform and CI roles are reported, not failed: they serve every tenant by design.

The pipeline role check derives the requests from a real pipeline definition (mlops.pipeline.builder) and the
execution parameters of mlops.pipeline.parameters: a tenant's pipeline role must be allowed every request of
its own execution, and an execution given another tenant's role, URIs, group or tenant id must fail at
every step that parameter reaches.

The acceptance test of issue #18,
`test_a_tenant_cannot_run_a_job_as_read_the_data_of_or_register_or_approve_into_another_tenant`, puts both
together for the one sentence it proves (its docstring quotes it), with its own controls and mutations.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import policy_matrix as pm
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.terraform]

ROOT = Path(__file__).resolve().parents[2]
PREFIX_PAIR = ("acme", "acme-eu")

#: What each kind of tenant role exists for (the naming module's key of its name): at least these actions must
#: be allowed on its own tenant's resources. A kind the plan does not have is not asked for.
OWN_ACCESS_AT_LEAST = {
    # the job (step) role: reads its data, writes run outputs, uses its key through S3
    "role": {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey"},
    # the pipeline role: starts its jobs as its job role, reads the evaluation report, registers
    "pipeline_role": {"sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob", "iam:PassRole",
                      "sagemaker:CreateModelPackage", "s3:GetObject"},
    # the inference role: reads its model artifacts
    "inference_role": {"s3:GetObject", "kms:Decrypt"},
    # a deploy role: approves, creates and updates the endpoints of its environment, passes the inference role,
    # records and reads its deployments in the ledger (DEPLOY#<its endpoint>)
    "deploy_roles": {"sagemaker:UpdateModelPackage", "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "iam:PassRole",
                     "dynamodb:PutItem", "dynamodb:Query"},
}


def _describe(evaluations: list[pm.Evaluation], limit: int = 25) -> str:
    lines = [f"  {e.principal} -> {e.target}: {e.request.label} ({e.decision})" for e in evaluations[:limit]]
    more = f"\n  ... and {len(evaluations) - limit} more" if len(evaluations) > limit else ""
    return "\n".join(lines) + more


def test_the_registry_has_six_tenants_on_every_tier_with_a_prefix_pair(planned: pm.Planned) -> None:
    assert len(planned.tenants) >= 6 and set(PREFIX_PAIR) <= set(planned.tenants)
    assert {spec["tier"] for spec in pm.TENANTS.values()} == {"bronze", "silver", "gold"}
    for tenant in planned.tenants:
        assert planned.tenant_roles(tenant), f"no role of tenant {tenant} in the plan"
        assert planned.tenant_key(tenant) in planned.key_policies, f"no key policy for tenant {tenant}'s key"


def test_no_tenant_principal_is_allowed_anything_of_another_tenant(matrix: pm.Matrix) -> None:
    figures = matrix.figures()
    print("\nIAM matrix: " + ", ".join(f"{name} {value}" for name, value in figures.items()))
    assert figures["ordered pairs"] >= 30 and figures["cross-tenant requests"] > 0
    assert {e.request.family for e in matrix.cross} == set(pm.FAMILIES), "a request family is missing from the matrix"
    assert not matrix.cross_allows, f"{len(matrix.cross_allows)} cross-tenant allow(s):\n{_describe(matrix.cross_allows)}"
    # The intended exception is the shared model images only, and only of models the principal's tenant uses.
    for e in matrix.intended_allows:
        model = e.request.resource.rsplit("/", 1)[1]
        assert model in pm.TENANTS[e.tenant or ""]["models"], e


def test_every_tenant_role_is_allowed_what_it_exists_for_on_its_own_tenant(matrix: pm.Matrix) -> None:
    own: dict[str, set[str]] = {}
    for e in matrix.own_allows:
        own.setdefault(e.principal, set()).add(e.request.action)
    kinds: Counter[str] = Counter()
    for tenant in matrix.planned.tenants:
        for role in matrix.planned.tenant_roles(tenant):
            kind = matrix.planned.role_kind(role).split(".")[0]
            kinds[kind] += 1
            allowed = own.get(role.name, set())
            assert allowed, f"{role.name} is allowed nothing on tenant {tenant}'s resources: the matrix would be vacuous"
            missing = OWN_ACCESS_AT_LEAST.get(kind, set()) - allowed
            assert not missing, f"{role.name} ({kind}) lacks {sorted(missing)} on its own tenant"
    print(f"\nown-access allows: {len(matrix.own_allows)} over roles {dict(kinds)}")
    assert kinds["role"] == len(matrix.planned.tenants)


def _mutated(matrix: pm.Matrix, role: pm.Role, exact: str, pattern: str) -> pm.Matrix:
    return pm.evaluate_matrix(matrix.planned, [pm.widened(role, exact, pattern)])


def test_an_arn_widened_to_the_prefix_pair_is_caught(matrix: pm.Matrix) -> None:
    """The control of the first test: a policy of acme widened to `...acme*` must show cross-tenant allows on acme-eu."""
    planned = matrix.planned
    owner, neighbour = PREFIX_PAIR
    caught: dict[str, int] = {}
    # A registry ARN (no resource policy in the way): acme's model package group, widened.
    group = planned.tenant_names(owner)["model_package_groups"]["churn"]
    roles = [r for r in planned.tenant_roles(owner) if group in json.dumps(r.identity)]
    assert roles, f"no role of {owner} names {group}"
    for role in roles:
        found = [e for e in _mutated(matrix, role, group, f"{planned.project}-{owner}*").cross_allows if e.target == neighbour]
        caught[f"{role.name}: {group} -> {planned.project}-{owner}*"] = len(found)
    # The bucket ARN, widened: caught, unless the neighbour's bucket policy denies it explicitly.
    bucket = f"arn:aws:s3:::{planned.tenant_names(owner)['bucket']}"
    for role in [r for r in planned.tenant_roles(owner) if bucket in json.dumps(r.identity)]:
        mutated = _mutated(matrix, role, bucket, f"arn:aws:s3:::{planned.project}-tenant-{owner}*")
        found = [e for e in mutated.cross_allows if e.target == neighbour and e.request.resource.startswith("arn:aws:s3:::")]
        denied_by_bucket = [e for e in mutated.cross if e.target == neighbour and e.decision == "ExplicitlyDenied"]
        caught[f"{role.name}: {bucket} -> {planned.project}-tenant-{owner}*"] = len(found)
        assert found or denied_by_bucket, f"{role.name}: the widened bucket ARN was neither caught nor denied by {neighbour}'s policies"
    print("\nmutations (cross-tenant allows found on acme-eu): " + "; ".join(f"{k}: {v}" for k, v in caught.items()))
    assert all(count > 0 for label, count in caught.items() if group in label), caught


def test_shared_roles_cross_tenant_actions_are_listed(matrix: pm.Matrix) -> None:
    """Platform and CI roles serve every tenant by design: their reach is a figure, not a failure."""
    shared = matrix.shared_allows()
    names = {role.name for role in matrix.planned.shared_roles()}
    assert names, "no shared role in the plan"
    for role in sorted(names):
        actions = shared.get(role, {})
        tenant_wide = sorted(action for action, tenants in actions.items() if len(tenants) == len(matrix.planned.tenants))
        print(f"\n{role}: {len(actions)} action(s) on tenants' resources; on every tenant: {', '.join(tenant_wide) or 'none'}")


def test_deploy_roles_stay_in_their_environment(matrix: pm.Matrix) -> None:
    deploy = [e for e in matrix.own_allows if matrix.planned.role_kind(matrix.planned.roles[e.principal]).startswith("deploy_roles.")]
    if not deploy:
        pytest.skip("no per-environment deploy role in the plan (issue #18 item 2 adds them)")
    crossing = [e for e in deploy if e.request.family == "endpoint" and e.request.environment and
                matrix.planned.role_kind(matrix.planned.roles[e.principal]) != f"deploy_roles.{e.request.environment}"]
    assert not crossing, f"deploy roles reaching another environment's endpoints:\n{_describe(crossing)}"


# -- the pipeline role, from a real definition ---------------------------------------------------------------

@pytest.fixture(scope="module")
def definitions() -> dict[str, dict[str, Any]]:
    """The pipeline definitions of the example models the registry trains (built by mlops.pipeline.builder)."""
    from mlops.config.contract import load_contract
    from mlops.pipeline.builder import definition_json

    models = sorted({model for spec in pm.TENANTS.values() for model in spec["models"]})
    return {model: json.loads(definition_json(load_contract(ROOT / "examples" / model), pipeline_name=f"mlops-demo-x-{model}"))
            for model in models}


def _values(planned: pm.Planned, tenant: str, model: str) -> dict[str, str]:
    from mlops.naming import Names
    from mlops.pipeline.parameters import RunRequest, execution_parameters, image_uri

    names = Names(project=planned.project, account_id=planned.account, region=planned.region)
    return execution_parameters(names, RunRequest(
        tenant=tenant, tier=pm.TENANTS[tenant]["tier"], model=model, instance_type="ml.m5.large", instance_count=1,
        code_uri=f"s3://{planned.names['platform']['artifacts_bucket']}/code/{model}/1.0.0",
        image_uri=image_uri(names, model, "1.0.0"), model_version="1.0.0"))


def _runs(planned: pm.Planned, tenant: str, model: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(label, other tenant, parameter values): the tenant's own execution first, then every other tenant's value
    of each tenant parameter in turn, and all of them at once."""
    own = _values(planned, tenant, model)
    yield "own", tenant, own
    for other in planned.tenants:
        if other != tenant:
            theirs = _values(planned, other, model)
            for name in pm.TENANT_PARAMETERS:
                yield name, other, {**own, name: theirs[name]}
            yield "all", other, {**own, **{name: theirs[name] for name in pm.TENANT_PARAMETERS}}


class PipelineCheck:
    """Executions of each tenant's pipelines, its own and with another tenant's parameter values, evaluated.

    `needs`: role kind -> the actions its own executions ask for; `denied_own`: requests of an own execution that
    would fail; `leaks`: steps of an execution given another tenant's parameter that would still run (every
    request of the step allowed) although that parameter changed what the step asks for.
    """

    def __init__(self, planned: pm.Planned, definitions: dict[str, dict[str, Any]], tenants: list[str] | None = None,
                 replaced: dict[str, pm.Role] | None = None):
        replaced = replaced or {}
        by_arn = {role.arn: replaced.get(role.name, role) for role in planned.roles.values()}
        runs = []  # (tenant, model, label, other, step -> [(role name, request)])
        triples = []
        roles: dict[str, pm.Role] = {}
        for tenant in tenants or planned.tenants:
            pipeline_roles = [r for r in planned.tenant_roles(tenant) if planned.role_kind(r) == "pipeline_role"]
            assert len(pipeline_roles) == 1, f"tenant {tenant}: pipeline roles {pipeline_roles}"
            pipeline_role = replaced.get(pipeline_roles[0].name, pipeline_roles[0])
            for model in pm.TENANTS[tenant]["models"]:
                for label, other, values in _runs(planned, tenant, model):
                    steps: dict[str, list[tuple[str, pm.Request]]] = {}
                    for item in pm.pipeline_requests(planned, definitions[model], values):
                        role = pipeline_role if item.principal == "pipeline" else by_arn.get(values["RoleArn"])
                        if role is None:
                            raise AssertionError(f"the job role {values['RoleArn']} is not in the plan")
                        roles[role.name] = role
                        steps.setdefault(item.step, []).append((role.name, item.request))
                        triples.append((role, other, item.request))
                    runs.append((tenant, model, label, other, steps))
        decisions, self.seconds = pm.evaluate_unique(planned, triples)
        self.executions, self.requests = len(runs), len(decisions)
        self.needs: dict[str, set[str]] = {}
        self.denied_own: list[str] = []
        self.leaks: list[str] = []
        own_steps: dict[tuple[str, str], dict[str, list[tuple[str, pm.Request]]]] = {}
        for tenant, model, label, other, steps in runs:
            if label == "own":
                own_steps[(tenant, model)] = steps
                for step, requests in steps.items():
                    for role_name, request in requests:
                        self.needs.setdefault(planned.role_kind(roles[role_name]), set()).add(request.action)
                        if decisions[(role_name, request)] != "Allowed":
                            self.denied_own.append(f"{tenant}/{model} {step}: {role_name} {request.label} "
                                                   f"{decisions[(role_name, request)]}")
                continue
            for step, requests in steps.items():
                if requests == own_steps[(tenant, model)].get(step):
                    continue  # this parameter does not reach the step
                if all(decisions[pair] == "Allowed" for pair in requests):
                    self.leaks.append(f"{tenant}/{model} with {other}'s {label}: step {step} would run")


def test_pipeline_role_runs_its_own_tenant_s_definition_and_nothing_of_another(
        simulator: str, planned: pm.Planned, definitions: dict[str, dict[str, Any]]) -> None:  # pylint: disable=unused-argument
    if not any(planned.role_kind(r) == "pipeline_role" for t in planned.tenants for r in planned.tenant_roles(t)):
        pytest.skip("no per-tenant pipeline role in the plan (issue #18 item 1 adds it)")
    check = PipelineCheck(planned, definitions)
    needs = "; ".join(f"{kind}: {', '.join(sorted(actions))}" for kind, actions in sorted(check.needs.items()))
    print(f"\npipeline check: {check.executions} executions, {check.requests} distinct requests, {check.seconds:.1f} s in the "
          f"simulator; needs by role: {needs}")
    print(f"denied on its own tenant: {len(check.denied_own)}; steps that would run with another tenant's parameter: {len(check.leaks)}")
    assert not check.denied_own and not check.leaks, (
        "the pipeline cannot run for its own tenant:\n  " + "\n  ".join(check.denied_own[:20]) +
        "\nanother tenant's parameter reaches a step that would run:\n  " + "\n  ".join(check.leaks[:20]))


# -- the acceptance sentence of issue #18 ---------------------------------------------------------------------

#: What the acceptance sentence forbids across tenants, as IAM requests on the other tenant's resources.
FORBIDDEN = {
    # run a job as another tenant: pass one of its roles to SageMaker, or create a job carrying its tenant tag
    "run a job as it": {("role", "iam:PassRole"), ("execution", "sagemaker:CreateProcessingJob"),
                        ("execution", "sagemaker:CreateTrainingJob")},
    # read its data (and its run outputs and models), directly or by decrypting with its key
    "read its data": {("data", "s3:GetObject"), ("data", "s3:ListBucket"), ("model", "s3:GetObject"), ("model", "s3:ListBucket"),
                      ("key", "kms:Decrypt")},
    "register into its groups": {("registry", "sagemaker:CreateModelPackage")},
    "approve into its groups": {("registry", "sagemaker:UpdateModelPackage")},
}
#: The same requests on its own tenant, and the role kind that must be allowed them (else the check is vacuous).
FORBIDDEN_OWN_CONTROL = {
    "run a job as it": ("pipeline_role", {"iam:PassRole", "sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"}),
    "read its data": ("role", {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}),
    "register into its groups": ("pipeline_role", {"sagemaker:CreateModelPackage"}),
    "approve into its groups": ("deploy_roles", {"sagemaker:UpdateModelPackage"}),
}


def _forbidden_allows(evaluations: list[pm.Evaluation]) -> dict[str, list[pm.Evaluation]]:
    """What of FORBIDDEN is allowed across tenants in `evaluations`, by clause of the sentence."""
    found: dict[str, list[pm.Evaluation]] = {clause: [] for clause in FORBIDDEN}
    for e in evaluations:
        if e.tenant is not None and e.tenant != e.target and e.allowed:
            for clause, requests in FORBIDDEN.items():
                if (e.request.family, e.request.action) in requests:
                    found[clause].append(e)
    return found


def _acceptance_violations(planned: pm.Planned, definitions: dict[str, dict[str, Any]], roles: list[pm.Role],
                           tenants: list[str]) -> list[str]:
    """Every way `roles` (of `tenants`) or those tenants' pipeline parameters break the acceptance sentence."""
    matrix = pm.evaluate_matrix(planned, roles)
    found = [f"{clause}: {e.principal} -> {e.target}: {e.request.label}"
             for clause, allows in _forbidden_allows(matrix.evaluations).items() for e in allows]
    check = PipelineCheck(planned, definitions, tenants, {role.name: role for role in roles})
    return found + [f"through the pipeline's parameters: {leak}" for leak in check.leaks]


def test_a_tenant_cannot_run_a_job_as_read_the_data_of_or_register_or_approve_into_another_tenant(  # pylint: disable=too-many-locals
        matrix: pm.Matrix, definitions: dict[str, dict[str, Any]]) -> None:
    """Issue #18's acceptance: "a tenant cannot, through any of its roles or through the pipeline's parameters, run a
    job as another tenant, read its data, or register or approve into its model package groups".

    Any of its roles: every role the plan gives each of six tenants (job, pipeline, inference, one deploy role per
    environment) against every other tenant's roles, jobs, data, run outputs, models, key, groups and packages.
    The pipeline's parameters: each tenant's pipeline run with another tenant's RoleArn, data and output URIs,
    model package group or tenant id, one at a time and all at once; every step such a value reaches must fail.
    Controls: each clause's requests are evaluated across tenants and allowed on the tenant's own resources
    (else "all denied" proves nothing), and widening one ARN of acme to `...acme*` (which matches acme-eu) in a
    copy of a role breaks the sentence, through the role and through the pipeline's parameters.
    """
    planned = matrix.planned
    # Non-vacuous: every clause is asked across tenants and allowed on the tenant's own resources.
    for clause, requests in FORBIDDEN.items():
        asked = [e for e in matrix.cross if (e.request.family, e.request.action) in requests]
        assert asked, f"the matrix asks nothing of '{clause}' across tenants"
        kind, actions = FORBIDDEN_OWN_CONTROL[clause]
        for tenant in planned.tenants:
            allowed = {e.request.action for e in matrix.own_allows
                       if e.target == tenant and planned.role_kind(planned.roles[e.principal]).split(".")[0] == kind}
            assert actions <= allowed, f"{tenant}'s {kind} may not '{clause}' on its own tenant: lacks {sorted(actions - allowed)}"

    # Through any of its roles (the evaluated matrix) and through the pipeline's parameters (every tenant's runs).
    broken = {clause: allows for clause, allows in _forbidden_allows(matrix.evaluations).items() if allows}
    assert not broken, "\n".join(f"{clause}:\n{_describe(allows)}" for clause, allows in broken.items())
    leaks = PipelineCheck(planned, definitions).leaks
    assert not leaks, "through the pipeline's parameters:\n  " + "\n  ".join(leaks[:20])

    # Mutation control: the same check on a copy of acme's roles with one ARN widened to the prefix pair.
    owner, neighbour = PREFIX_PAIR
    roles = {planned.role_kind(r): r for r in planned.tenant_roles(owner)}
    group = planned.tenant_names(owner)["model_package_groups"]["churn"]
    bucket = f"arn:aws:s3:::{planned.tenant_names(owner)['bucket']}"
    job_role = f"arn:aws:iam::{planned.account}:role/{planned.tenant_names(owner)['role']}"
    mutations = {
        "pipeline role, group widened": (roles["pipeline_role"], group, f"{planned.project}-{owner}*", "register into its groups"),
        "pipeline role, PassRole widened": (roles["pipeline_role"], job_role, f"{job_role}*", "run a job as it"),
        "job role, bucket widened": (roles["role"], bucket, f"arn:aws:s3:::{planned.project}-tenant-{owner}*", "read its data"),
        "deploy role, group widened": (roles["deploy_roles.production"], group, f"{planned.project}-{owner}*", "approve into its groups"),
    }
    caught = {}
    for label, (role, exact, pattern, clause) in mutations.items():
        violations = _acceptance_violations(planned, definitions, [pm.widened(role, exact, pattern)], [owner])
        caught[label] = [v for v in violations if v.startswith(clause) and f"-> {neighbour}:" in v]
        if role is roles["pipeline_role"]:
            caught[label] += [v for v in violations if "pipeline's parameters" in v and f"with {neighbour}'s" in v]
    print("\nacceptance mutations caught (violations on acme-eu): " + "; ".join(f"{k}: {len(v)}" for k, v in caught.items()))
    assert all(caught.values()), {label: len(found) for label, found in caught.items()}
