# One tenant: its bucket (data/, runs/, models/), the role its pipeline executions run as, a model package
# group per model it trains, and the EventBridge rule that turns its data uploads into build requests.
# Everything carries the tenant's cost-allocation tags (mlops.config.tenants.Tenant.cost_tags).
#
# A disabled tenant (`enabled = false`) keeps its data: the bucket, its key and its model package groups
# stay under Terraform's management, while what lets it run (its role and policy, its upload rule) goes.
# Enabling it again recreates only those. Deleting the data takes removing the tenant's registry file and
# `mlops infra apply --allow-destroy-data` (docs/terraform.md, "Data is kept").

module "names" {
  source = "../naming"

  project    = var.project
  account_id = var.account_id
  region     = var.region
  tenants    = { (var.tenant_id) = { models = var.models } }
}

locals {
  names = module.names.tenants[var.tenant_id]
  arn   = "arn:aws:sagemaker:${var.region}:${var.account_id}"
  # One instance of each access resource (role, policy, upload rule) while the tenant is enabled, none while
  # it is disabled.
  access = var.enabled ? 1 : 0
  # Static ARNs (computed from names, not read from resources): the policy is known at plan time and the
  # terraform tests can check it with a mock provider.
  bucket_arn = "arn:aws:s3:::${local.names.bucket}"
  group_arns = [for group in values(local.names.model_package_groups) : "${local.arn}:model-package-group/${group}"]
  # A model package's ARN is model-package/<group name>/<version>.
  package_arns = [for group in values(local.names.model_package_groups) : "${local.arn}:model-package/${group}/*"]
  # One pipeline per tenant and model: its executions are pipeline/<name>/execution/<id>, so exact names
  # (no trailing wildcard: tenant "acme" must not match "acme-eu") give the tenant its own and nothing else.
  pipeline_arns  = [for pipeline in values(local.names.pipelines) : "${local.arn}:pipeline/${pipeline}"]
  execution_arns = [for pipeline in values(local.names.pipelines) : "${local.arn}:pipeline/${pipeline}/execution/*"]
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "OwnBucketList"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = local.bucket_arn
      },
      {
        Sid      = "OwnBucketObjects"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
        Resource = "${local.bucket_arn}/*"
      },
      {
        Sid      = "OwnKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.tenant.arn
      },
      {
        # Pipeline code of the tenant's models only (code/<model>/... in the artifacts bucket).
        Sid      = "PipelineCode"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = [for model in var.models : "${var.artifacts_bucket_arn}/code/${model}/*"]
      },
      {
        Sid      = "PlatformKeyDecrypt"
        Effect   = "Allow"
        Action   = "kms:Decrypt"
        Resource = var.platform_kms_key_arn
      },
      {
        Sid      = "Images"
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
        Resource = var.ecr_repository_arns
      },
      {
        # GetAuthorizationToken has no resource type in IAM.
        Sid      = "EcrToken"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      },
      {
        Sid      = "OwnModelPackageGroups"
        Effect   = "Allow"
        Action   = ["sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackage"]
        Resource = local.group_arns
      },
      {
        Sid      = "OwnModelPackages"
        Effect   = "Allow"
        Action   = ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"]
        Resource = local.package_arns
      },
      {
        Sid      = "OwnPipelines"
        Effect   = "Allow"
        Action   = ["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"]
        Resource = local.pipeline_arns
      },
      {
        Sid    = "OwnPipelineExecutions"
        Effect = "Allow"
        Action = [
          "sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps", "sagemaker:ListPipelineParametersForExecution",
          "sagemaker:StopPipelineExecution", "sagemaker:RetryPipelineExecution",
        ]
        Resource = local.execution_arns
      },
      {
        # SageMaker writes job logs to shared groups under /aws/sagemaker/ with the job name as stream.
        Sid      = "JobLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "arn:aws:logs:${var.region}:${var.account_id}:log-group:/aws/sagemaker/*"
      },
    ]
  })
  # Same order as Tenant.cost_tags: the registry's tags win over the platform's own.
  tags = merge({
    "mlops:project" = var.project
    "mlops:tenant"  = var.tenant_id
    "mlops:tier"    = var.tier
  }, var.tags)
}

resource "aws_s3_bucket" "tenant" {
  # checkov:skip=CKV_AWS_18: access is audited with CloudTrail S3 data events at the account level, not per bucket
  # checkov:skip=CKV_AWS_144: cross-region replication is a disaster-recovery choice of the operator, not of this template
  bucket        = local.names.bucket
  force_destroy = var.force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_versioning" "tenant" {
  bucket = aws_s3_bucket.tenant.id

  versioning_configuration {
    status = "Enabled"
  }
}

# A key per tenant: its data and models are unreadable with any other tenant's key, and deleting the key
# shreds them.
resource "aws_kms_key" "tenant" {
  description             = "${var.project}: data and models of tenant ${var.tenant_id}."
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_in_days
  tags                    = local.tags
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # The account administers the key; the tenant role uses it through its IAM policy.
      Sid       = "Account"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_alias" "tenant" {
  name          = "alias/${var.project}-tenant-${var.tenant_id}"
  target_key_id = aws_kms_key.tenant.key_id
}

resource "aws_s3_bucket_server_side_encryption_configuration" "tenant" {
  bucket = aws_s3_bucket.tenant.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.tenant.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "tenant" {
  bucket = aws_s3_bucket.tenant.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.tenant]
}

resource "aws_s3_bucket_public_access_block" "tenant" {
  bucket                  = aws_s3_bucket.tenant.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# S3 sends every object event of the bucket to EventBridge; the rule below picks the uploads.
resource "aws_s3_bucket_notification" "tenant" {
  bucket      = aws_s3_bucket.tenant.id
  eventbridge = true
}

resource "aws_cloudwatch_event_rule" "uploads" {
  count = local.access

  name        = local.names.upload_rule
  description = "New training data of tenant ${var.tenant_id} (objects created under data/)."
  tags        = local.tags
  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [aws_s3_bucket.tenant.bucket] }
      object = { key = [{ prefix = "data/" }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "uploads" {
  count = local.access

  rule      = aws_cloudwatch_event_rule.uploads[0].name
  target_id = "uploads-queue"
  arn       = var.uploads_queue_arn
}

# The role the tenant's SageMaker jobs and endpoints run as. Every statement names this tenant's own
# resources by static ARN (no tags, no policy variables), so a test can prove the isolation with IAM
# evaluation alone (tests/isolation). The same policy is the role's permissions boundary: a policy attached
# later by a platform role cannot widen what the role may do.
resource "aws_iam_role" "tenant" {
  count = local.access

  name                 = local.names.role
  description          = "SageMaker jobs and endpoints of tenant ${var.tenant_id}."
  permissions_boundary = aws_iam_policy.tenant[0].arn
  tags                 = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "sagemaker.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_policy" "tenant" {
  count = local.access

  name        = "${local.names.role}-access"
  description = "What tenant ${var.tenant_id}'s jobs may touch: its own bucket, key and model package groups."
  policy      = local.policy
  tags        = local.tags
}

resource "aws_iam_role_policy_attachment" "tenant" {
  count = local.access

  role       = aws_iam_role.tenant[0].name
  policy_arn = aws_iam_policy.tenant[0].arn
}

resource "aws_sagemaker_model_package_group" "model" {
  for_each = local.names.model_package_groups

  model_package_group_name        = each.value
  model_package_group_description = "Model versions of ${each.key} trained for tenant ${var.tenant_id}."
  tags                            = merge(local.tags, { "mlops:model" = each.key })
}

# The access resources gained `count` (a disabled tenant has none): state written before keeps them.
moved {
  from = aws_cloudwatch_event_rule.uploads
  to   = aws_cloudwatch_event_rule.uploads[0]
}

moved {
  from = aws_cloudwatch_event_target.uploads
  to   = aws_cloudwatch_event_target.uploads[0]
}

moved {
  from = aws_iam_role.tenant
  to   = aws_iam_role.tenant[0]
}

moved {
  from = aws_iam_policy.tenant
  to   = aws_iam_policy.tenant[0]
}

moved {
  from = aws_iam_role_policy_attachment.tenant
  to   = aws_iam_role_policy_attachment.tenant[0]
}
