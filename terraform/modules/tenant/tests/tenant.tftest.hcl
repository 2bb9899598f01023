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
    error_message = "The job role lists its own bucket only."
  }
  assert {
    condition     = toset(flatten([for s in jsondecode(output.policy_json).Statement : s.Resource if contains(flatten([s.Action]), "s3:PutObject")])) == toset(["arn:aws:s3:::mlops-tenant-acme-123456789012/runs/*"])
    error_message = "Jobs write under runs/ of their own bucket only."
  }
  assert {
    condition     = !strcontains(jsonencode(output.policies_json), "s3:DeleteObject") && !strcontains(jsonencode(output.policies_json), "sagemaker:UpdateModelPackage")
    error_message = "No SageMaker role of the tenant deletes objects or approves model packages."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(output.policy_json).Statement : s.Resource if s.Sid == "PipelineCode"])) == toset([
      "arn:aws:s3:::mlops-artifacts-123456789012-eu-west-1/code/churn/*",
      "arn:aws:s3:::mlops-artifacts-123456789012-eu-west-1/code/house-prices/*",
    ])
    error_message = "Jobs read the pipeline code of the tenant's own models only."
  }
  assert {
    condition     = alltrue([for s in jsondecode(output.policy_json).Statement : !strcontains(jsonencode(s.Resource), "/aws/sagemaker/*") if s.Sid == "JobLogs"])
    error_message = "Jobs write to the processing and training job log groups only, not every /aws/sagemaker/ group."
  }
  assert {
    condition     = alltrue([for role, policy in output.policies_json : alltrue([for s in jsondecode(policy).Statement : s.Resource != "*" || s.Action == "ecr:GetAuthorizationToken"])])
    error_message = "Only ecr:GetAuthorizationToken (no resource type in IAM) is granted on *."
  }
  assert {
    condition     = [for s in jsondecode(output.policies_json.pipeline).Statement : s if s.Sid == "PassStepRole"][0].Resource == "arn:aws:iam::123456789012:role/mlops-tenant-acme"
    error_message = "The pipeline role passes the tenant's own step role only."
  }
  assert {
    condition = alltrue([for s in jsondecode(output.policies_json.pipeline).Statement :
    s.Condition.StringEquals["sagemaker:ModelApprovalStatus"] == "PendingManualApproval" if contains(flatten([s.Action]), "sagemaker:CreateModelPackage")])
    error_message = "The pipeline role registers pending versions only."
  }
  assert {
    condition = toset(flatten([for s in jsondecode(output.policies_json.pipeline).Statement : s.Resource if s.Sid == "RegisterPending"])) == toset([
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/mlops-acme-churn",
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/mlops-acme-house-prices",
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-acme-churn/*",
      "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-acme-house-prices/*",
    ])
    error_message = "The pipeline role registers into the tenant's own groups only (exact names: acme never matches acme-eu)."
  }
  assert {
    condition     = contains(flatten([for s in jsondecode(output.policies_json.inference).Statement : s.Resource if s.Sid == "EndpointLogs"]), "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/mlops-production-acme-churn")
    error_message = "The inference role writes the logs of the tenant's own endpoints."
  }
  assert {
    condition     = jsondecode(aws_iam_role.tenant[0].assume_role_policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
    error_message = "SageMaker assumes the tenant's roles for this account only."
  }
  assert {
    condition     = length([for s in jsondecode(aws_kms_key.tenant.policy).Statement : s if contains(flatten([s.Action]), "kms:*") || (contains(flatten([s.Action]), "kms:Decrypt") && !can(s.Condition["StringEquals"]["kms:ViaService"]))]) == 0
    error_message = "The tenant key grants no kms:* and its data operations only through S3."
  }
  assert {
    condition     = toset([for s in jsondecode(output.bucket_policy_json).Statement : s.Sid if s.Effect == "Deny"]) == toset(["TlsOnly", "OnlyKmsEncryption", "OnlyTheTenantKey"])
    error_message = "The bucket refuses plain HTTP and uploads encrypted otherwise than with the tenant key."
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
      + length(aws_iam_role.service) + length(aws_iam_policy.service)
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

run "rejects_platform_tags" {
  command = plan
  variables { tags = { "mlops:tenant" = "other" } }
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
