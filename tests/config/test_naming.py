"""The naming module: names follow the scheme and AWS's limits are enforced."""

from __future__ import annotations

import pytest

from mlops.errors import NamingError
from mlops import naming
from mlops.naming import Names


@pytest.fixture
def names() -> Names:
    """A naming scheme in a fixed account and region."""
    return Names(project="acme-ml", account_id="123456789012", region="eu-west-1")


@pytest.mark.parametrize(
    ("method", "args", "expected"),
    [
        pytest.param("artifacts_bucket", (), "acme-ml-artifacts-123456789012-eu-west-1", id="artifacts-bucket"),
        pytest.param("ecr_repository", ("churn",), "acme-ml/churn", id="ecr"),
        pytest.param("pipeline", ("globex", "churn"), "acme-ml-globex-churn", id="pipeline"),
        pytest.param("tenant_bucket", ("globex",), "acme-ml-tenant-globex-123456789012", id="tenant-bucket"),
        pytest.param("model_package_group", ("globex", "churn"), "acme-ml-globex-churn", id="package-group"),
        pytest.param("endpoint", ("globex", "churn", "staging"), "acme-ml-staging-globex-churn", id="endpoint-staging"),
        pytest.param("endpoint", ("globex", "churn", "production"), "acme-ml-production-globex-churn", id="endpoint-production"),
        pytest.param("pipeline_role", ("globex",), "acme-ml-pipeline-globex", id="pipeline-role"),
        pytest.param("inference_role", ("globex",), "acme-ml-inference-globex", id="inference-role"),
        pytest.param("deploy_role", ("production", "globex"), "acme-ml-deploy-production-globex", id="deploy-role"),
        pytest.param("tier_queue", ("gold",), "acme-ml-requests-gold", id="tier-queue"),
        pytest.param("ledger_table", (), "acme-ml-ledger", id="ledger"),
        pytest.param("tenant_role", ("globex",), "acme-ml-tenant-globex", id="tenant-role"),
        pytest.param("ci_role", ("train",), "acme-ml-ci-train", id="ci-role"),
    ],
)
def test_names_follow_the_scheme(names: Names, method: str, args: tuple, expected: str) -> None:
    assert getattr(names, method)(*args) == expected


@pytest.mark.parametrize(
    ("project", "account", "region", "message"),
    [
        pytest.param("Acme", "123456789012", "us-east-1", "not a valid identifier", id="uppercase-project"),
        pytest.param("a" * 21, "123456789012", "us-east-1", "at most 20", id="long-project"),
        pytest.param("acme", "12345", "us-east-1", "12 digits", id="short-account"),
        pytest.param("acme", "123456789012", "mars", "region", id="bad-region"),
        pytest.param("acme--ml", "123456789012", "us-east-1", "not a valid identifier", id="double-hyphen"),
    ],
)
def test_bad_project_settings_are_refused(project: str, account: str, region: str, message: str) -> None:
    with pytest.raises(NamingError, match=message):
        Names(project=project, account_id=account, region=region)


def test_a_tenant_id_that_overflows_a_bucket_name_is_refused() -> None:
    names = Names(project="a-twenty-char-projec")
    with pytest.raises(NamingError, match="S3 bucket name .* AWS allows 63"):
        names.tenant_bucket("a-very-long-tenant-id-xx")


def test_every_generated_name_respects_its_limit() -> None:
    names = Names(project="p" * 20, account_id="999999999999", region="ap-southeast-4")
    tenant = "t" * 20
    assert len(names.tenant_bucket(tenant)) <= 63
    assert len(names.artifacts_bucket()) <= 63
    with pytest.raises(NamingError):
        names.model_package_group("t" * 24, "m" * 24)


def test_arns_and_uris_are_built_from_the_names(names: Names) -> None:
    assert naming.iam_role_arn(names, names.tenant_role("globex")) == "arn:aws:iam::123456789012:role/acme-ml-tenant-globex"
    assert naming.ecr_image_uri(names, "churn", "1.2.0") == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme-ml/churn:1.2.0"
    assert (naming.sagemaker_job_arn("eu-west-1", "123456789012", "TrainingJob", "pipelines-abc-Train-1")
            == "arn:aws:sagemaker:eu-west-1:123456789012:training-job/pipelines-abc-Train-1")
    assert (naming.lambda_function_arn("eu-west-1", "123456789012", names.lambda_function("trigger"))
            == "arn:aws:lambda:eu-west-1:123456789012:function:acme-ml-trigger")
    assert names.model_package_group("globex", "churn").startswith(naming.model_package_group_prefix(names))
    with pytest.raises(NamingError, match="not a SageMaker job kind"):
        naming.sagemaker_job_arn("eu-west-1", "123456789012", "Endpoint", "x")
    with pytest.raises(NamingError, match="IAM role"):
        naming.iam_role_arn(names, "no spaces allowed")
