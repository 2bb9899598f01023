# The tenant module without AWS: every validation, and the content of the tenant role's policy.
mock_provider "aws" {
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/mock" }
  }
}

variables {
  project              = "mlops"
  account_id           = "123456789012"
  region               = "eu-west-1"
  tenant_id            = "acme"
  tier                 = "gold"
  models               = ["churn", "house-prices"]
  tags                 = { "cost-center" = "cc-1" }
  uploads_queue_arn    = "arn:aws:sqs:eu-west-1:123456789012:mlops-uploads"
  artifacts_bucket_arn = "arn:aws:s3:::mlops-artifacts-123456789012-eu-west-1"
  ecr_repository_arns  = ["arn:aws:ecr:eu-west-1:123456789012:repository/mlops/churn"]
  platform_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/platform"
}

run "policy_names_only_this_tenants_resources" {
  # apply (against the mock) so the tenant key's ARN is known to the assertions.
  command = apply

  assert {
    condition     = jsondecode(output.policy_json).Statement[0].Resource == "arn:aws:s3:::mlops-tenant-acme-123456789012"
    error_message = "The bucket statement must name the tenant's own bucket only."
  }
  assert {
    condition     = jsondecode(output.policy_json).Statement[1].Resource == "arn:aws:s3:::mlops-tenant-acme-123456789012/*"
    error_message = "The object statement must name the tenant's own bucket only."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "OwnModelPackageGroups"])) == toset([
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/mlops-acme-churn",
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/mlops-acme-house-prices",
    ])
    error_message = "Model package group permissions must name exactly the tenant's groups."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "OwnModelPackages"])) == toset([
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-acme-churn/*",
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-acme-house-prices/*",
    ])
    error_message = "Model package permissions must name exactly the tenant's packages."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "PipelineCode"])) == toset([
      "arn:aws:s3:::mlops-artifacts-123456789012-eu-west-1/code/churn/*",
      "arn:aws:s3:::mlops-artifacts-123456789012-eu-west-1/code/house-prices/*",
    ])
    error_message = "The tenant reads the pipeline code of its own models only."
  }
  assert {
    # Only actions without a resource type in IAM may use "*".
    condition     = alltrue([for s in jsondecode(output.policy_json).Statement : s.Resource != "*" || s.Action == "ecr:GetAuthorizationToken"])
    error_message = "No statement but the ECR token may use Resource \"*\"."
  }
  assert {
    condition     = alltrue([for s in jsondecode(output.policy_json).Statement : s.Effect == "Allow" && !can(s.Condition) && !strcontains(jsonencode(s.Resource), "{")])
    error_message = "Isolation must come from static ARNs: no conditions and no policy variables."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "OwnPipelines"])) == toset([
      "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-acme-churn",
      "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-acme-house-prices",
    ])
    error_message = "The tenant starts and lists executions of its own pipelines only, named exactly (no prefix wildcard)."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "OwnPipelineExecutions"])) == toset([
      "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-acme-churn/execution/*",
      "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-acme-house-prices/execution/*",
    ])
    error_message = "The tenant describes and stops executions of its own pipelines only."
  }
  assert {
    # Every pipeline action is in one of the two statements above, so no other resource can carry one.
    condition     = alltrue([for s in jsondecode(output.policy_json).Statement : contains(["OwnPipelines", "OwnPipelineExecutions"], s.Sid) if anytrue([for a in flatten([s.Action]) : startswith(a, "sagemaker:") && strcontains(a, "Pipeline")])])
    error_message = "Pipeline actions appear only in the statements that name the tenant's own pipelines."
  }
  assert {
    condition     = output.tags == { "mlops:project" = "mlops", "mlops:tenant" = "acme", "mlops:tier" = "gold", "cost-center" = "cc-1" }
    error_message = "Every resource carries the tenant's cost tags."
  }
  assert {
    condition     = aws_iam_role.tenant[0].tags["mlops:tenant"] == "acme"
    error_message = "The role carries the tenant tag."
  }
  assert {
    condition     = aws_s3_bucket_public_access_block.tenant.block_public_policy && aws_s3_bucket_versioning.tenant.versioning_configuration[0].status == "Enabled"
    error_message = "The tenant bucket is versioned and blocks public access."
  }
  assert {
    condition     = aws_kms_key.tenant.enable_key_rotation
    error_message = "The tenant key rotates."
  }
}

run "disabled_tenant_keeps_its_data_and_loses_its_access" {
  command = plan
  variables { enabled = false }
  assert {
    condition     = aws_s3_bucket.tenant.bucket == "mlops-tenant-acme-123456789012" && aws_kms_key.tenant.enable_key_rotation
    error_message = "A disabled tenant keeps its bucket and its key."
  }
  assert {
    condition     = toset(keys(aws_sagemaker_model_package_group.model)) == toset(["churn", "house-prices"])
    error_message = "A disabled tenant keeps a model package group per model."
  }
  assert {
    condition = (length(aws_iam_role.tenant) + length(aws_iam_policy.tenant) + length(aws_iam_role_policy_attachment.tenant)
    + length(aws_cloudwatch_event_rule.uploads) + length(aws_cloudwatch_event_target.uploads)) == 0
    error_message = "A disabled tenant has no role, no policy and no upload rule."
  }
  assert {
    condition     = output.role_arn == null && !output.enabled
    error_message = "A disabled tenant has no role ARN."
  }
}

run "rejects_a_bad_tenant_id" {
  command = plan
  variables { tenant_id = "Acme_Corp" }
  expect_failures = [var.tenant_id]
}

run "rejects_a_bad_project" {
  command = plan
  variables { project = "ML--ops" }
  expect_failures = [var.project]
}

run "rejects_a_bad_account_id" {
  command = plan
  variables { account_id = "12345" }
  expect_failures = [var.account_id]
}

run "rejects_a_bad_region" {
  command = plan
  variables { region = "Europe" }
  expect_failures = [var.region]
}

run "rejects_a_bad_tier" {
  command = plan
  variables { tier = "Gold Tier" }
  expect_failures = [var.tier]
}

run "rejects_no_models" {
  command = plan
  variables { models = [] }
  expect_failures = [var.models]
}

run "rejects_aws_tags" {
  command = plan
  variables { tags = { "aws:owner" = "x" } }
  expect_failures = [var.tags]
}

run "rejects_a_bad_queue_arn" {
  command = plan
  variables { uploads_queue_arn = "mlops-uploads" }
  expect_failures = [var.uploads_queue_arn]
}

run "rejects_a_bad_bucket_arn" {
  command = plan
  variables { artifacts_bucket_arn = "s3://bucket" }
  expect_failures = [var.artifacts_bucket_arn]
}

run "rejects_a_bad_repository_arn" {
  command = plan
  variables { ecr_repository_arns = ["mlops/churn"] }
  expect_failures = [var.ecr_repository_arns]
}

run "rejects_a_bad_key_arn" {
  command = plan
  variables { platform_kms_key_arn = "alias/x" }
  expect_failures = [var.platform_kms_key_arn]
}

run "rejects_a_bad_version_retention" {
  command = plan
  variables { noncurrent_version_days = 0 }
  expect_failures = [var.noncurrent_version_days]
}

run "rejects_a_bad_key_deletion_window" {
  command = plan
  variables { kms_deletion_window_in_days = 3 }
  expect_failures = [var.kms_deletion_window_in_days]
}
