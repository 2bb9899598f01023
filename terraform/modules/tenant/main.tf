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
  # One instance of each access resource (roles, policies, upload rule) while the tenant is enabled, none
  # while it is disabled.
  access = var.enabled ? 1 : 0
  # Static ARNs (computed from names, not read from resources): the policies are known at plan time and the
  # terraform tests can check them with a mock provider.
  bucket_arn = "arn:aws:s3:::${local.names.bucket}"
  group_arns = [for group in values(local.names.model_package_groups) : "${local.arn}:model-package-group/${group}"]
  # A model package's ARN is model-package/<group name>/<version>.
  package_arns = [for group in values(local.names.model_package_groups) : "${local.arn}:model-package/${group}/*"]
  role_arns = {
    job       = "arn:aws:iam::${var.account_id}:role/${local.names.role}"
    pipeline  = "arn:aws:iam::${var.account_id}:role/${local.names.pipeline_role}"
    inference = "arn:aws:iam::${var.account_id}:role/${local.names.inference_role}"
  }
  deploy_role_arns = [for role in values(local.names.deploy_roles) : "arn:aws:iam::${var.account_id}:role/${role}"]
  # Every endpoint of the tenant, both environments: their log groups are the inference role's only ones.
  endpoints = flatten([for env in module.names.environments : values(local.names["${env}_endpoints"])])
  logs      = "arn:aws:logs:${var.region}:${var.account_id}:log-group"
  # The tenant key is used through S3 only (its bucket); nothing decrypts with it directly.
  via_s3 = { "kms:ViaService" = "s3.${var.region}.amazonaws.com" }
  # SageMaker assumes the tenant's roles for this account's jobs, pipelines and models only (confused deputy).
  sagemaker_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "sagemaker.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = var.account_id }
        ArnLike      = { "aws:SourceArn" = "${local.arn}:*" }
      }
    }]
  })

  # What the job and inference roles both need to run the model's image: pull it, and decrypt the platform's
  # artifacts (the model code).
  image_pull_statements = [
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
  ]

  # The step role: what the tenant's processing and training jobs touch. They read the tenant's data and the
  # model's code and image, and write under runs/ (their outputs); they delete nothing and register nothing.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "OwnBucketList"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation"]
        Resource = local.bucket_arn
      },
      {
        Sid      = "OwnBucketRead"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "${local.bucket_arn}/*"
      },
      {
        Sid      = "RunOutputs"
        Effect   = "Allow"
        Action   = ["s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = "${local.bucket_arn}/runs/*"
      },
      {
        Sid       = "OwnKey"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = aws_kms_key.tenant.arn
        Condition = { StringEquals = local.via_s3 }
      },
      {
        # Pipeline code of the tenant's models only (code/<model>/... in the artifacts bucket).
        Sid      = "PipelineCode"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = [for model in var.models : "${var.artifacts_bucket_arn}/code/${model}/*"]
      },
      {
        # Processing steps take the code as an S3 prefix input (CodeUri/src), which SageMaker lists first.
        # The trailing slash keeps model churn from matching a model named churn-v2.
        Sid       = "PipelineCodeList"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = var.artifacts_bucket_arn
        Condition = { StringLike = { "s3:prefix" = [for model in var.models : "code/${model}/*"] } }
      },
      {
        # SageMaker writes a job's logs to the shared groups of its kind, one stream per job instance
        # (<job name>/<host>). Stream names carry no tenant, so the role may append to any stream of these two
        # groups (never read them, never another group).
        Sid    = "JobLogs"
        Effect = "Allow"
        Action = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        Resource = flatten([for kind in ["ProcessingJobs", "TrainingJobs"] : [
          "${local.logs}:/aws/sagemaker/${kind}", "${local.logs}:/aws/sagemaker/${kind}:log-stream:*",
        ]])
      },
    ], local.image_pull_statements)
  })

  # The pipeline role (the pipelines' RoleArn). From SageMaker's "IAM access management" of Pipelines: pass
  # the step role, create and describe each job type of the definition (processing, training), read the
  # property file of JsonGet (evaluation.json under runs/), and the RegisterModel step's CreateModelPackage.
  # Every execution parameter stays inside the tenant: RoleArn can only be this tenant's step role (PassRole),
  # the jobs run as that role whatever URIs they are given, the package lands in this tenant's groups only and
  # only as PendingManualApproval (sagemaker:ModelApprovalStatus): approval belongs to the deploy roles.
  pipeline_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "PassStepRole"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = local.role_arns.job
        Condition = { StringEquals = { "iam:PassedToService" = "sagemaker.amazonaws.com" } }
      },
      {
        # Pipeline jobs are named by SageMaker (pipelines-<execution>-<step>-...): the tenant tag the
        # definition puts on every job is what scopes them.
        Sid       = "CreateJobs"
        Effect    = "Allow"
        Action    = ["sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"]
        Resource  = ["${local.arn}:processing-job/*", "${local.arn}:training-job/*"]
        Condition = { StringEquals = { "aws:RequestTag/mlops:tenant" = var.tenant_id } }
      },
      {
        # Tag-on-create needs AddTags; an existing job of another tenant cannot be re-tagged into this one.
        Sid      = "TagOwnJobs"
        Effect   = "Allow"
        Action   = "sagemaker:AddTags"
        Resource = ["${local.arn}:processing-job/*", "${local.arn}:training-job/*"]
        Condition = {
          StringEquals         = { "aws:RequestTag/mlops:tenant" = var.tenant_id }
          StringEqualsIfExists = { "aws:ResourceTag/mlops:tenant" = var.tenant_id }
        }
      },
      {
        Sid       = "FollowOwnJobs"
        Effect    = "Allow"
        Action    = ["sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopProcessingJob", "sagemaker:StopTrainingJob"]
        Resource  = ["${local.arn}:processing-job/*", "${local.arn}:training-job/*"]
        Condition = { StringEquals = { "aws:ResourceTag/mlops:tenant" = var.tenant_id } }
      },
      {
        Sid       = "RegisterPending"
        Effect    = "Allow"
        Action    = "sagemaker:CreateModelPackage"
        Resource  = concat(local.group_arns, local.package_arns)
        Condition = { StringEquals = { "sagemaker:ModelApprovalStatus" = "PendingManualApproval" } }
      },
      {
        Sid      = "EvaluationReport"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "${local.bucket_arn}/runs/*"
      },
      {
        Sid       = "OwnKeyDecrypt"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = aws_kms_key.tenant.arn
        Condition = { StringEquals = local.via_s3 }
      },
    ]
  })

  # The inference role (ExecutionRoleArn of the tenant's SageMaker models): the model artifact, the inference
  # code, the image and the logs of the tenant's own endpoints.
  inference_policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "ModelArtifacts"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = ["${local.bucket_arn}/runs/*", "${local.bucket_arn}/models/*"]
      },
      {
        Sid       = "OwnKeyDecrypt"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = aws_kms_key.tenant.arn
        Condition = { StringEquals = local.via_s3 }
      },
      {
        Sid      = "InferenceCode"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = [for model in var.models : "${var.artifacts_bucket_arn}/code/${model}/*"]
      },
      {
        # An endpoint logs to /aws/sagemaker/Endpoints/<endpoint name>: these are the tenant's own.
        Sid    = "EndpointLogs"
        Effect = "Allow"
        Action = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
        Resource = flatten([for endpoint in local.endpoints : [
          "${local.logs}:/aws/sagemaker/Endpoints/${endpoint}", "${local.logs}:/aws/sagemaker/Endpoints/${endpoint}:log-stream:*",
        ]])
      },
    ], local.image_pull_statements)
  })

  policies = {
    job       = local.policy
    pipeline  = local.pipeline_policy
    inference = local.inference_policy
  }
  role_names = {
    job       = local.names.role
    pipeline  = local.names.pipeline_role
    inference = local.names.inference_role
  }
  role_descriptions = {
    job       = "SageMaker processing and training jobs of tenant ${var.tenant_id} (the pipeline's step role)."
    pipeline  = "SageMaker pipelines of tenant ${var.tenant_id}: start its jobs as its step role, register pending model versions."
    inference = "SageMaker models and endpoints of tenant ${var.tenant_id}."
  }
  # Who may use the tenant key (through S3): the tenant's roles, its deploy roles (the gate reads the
  # evaluation report) and the principals the operator names (e.g. the tenant's data uploader).
  key_users = concat(values(local.role_arns), local.deploy_role_arns, var.key_user_arns)

  # Same tags as Tenant.cost_tags (the registry may not set mlops: keys: IAM conditions trust mlops:tenant).
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
    Statement = [
      {
        # The account administers the key (no data operation: those are for the tenant's principals only).
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
        Action = [
          "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*",
          "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
        ]
        Resource = "*"
      },
      {
        # Data operations for the tenant's own principals, through S3 only. Named by aws:PrincipalArn (the
        # account as Principal): a key policy naming a role that does not exist yet is rejected, and the
        # deploy roles exist only where the CI module is applied.
        Sid       = "TenantPrincipalsThroughS3"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
        Action    = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          StringEquals = local.via_s3
          ArnLike      = { "aws:PrincipalArn" = local.key_users }
        }
      },
    ]
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

module "bucket_guard" {
  source = "../bucket_guard"

  bucket_arn        = local.bucket_arn
  kms_key_arn       = aws_kms_key.tenant.arn
  key_statement_sid = "OnlyTheTenantKey"
}

# TLS only, and an upload names no other encryption than the tenant's key (modules/bucket_guard).
resource "aws_s3_bucket_policy" "tenant" {
  count = var.bucket_policy_enabled ? 1 : 0

  bucket = aws_s3_bucket.tenant.id
  policy = module.bucket_guard.policy

  depends_on = [aws_s3_bucket_public_access_block.tenant]
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

# The tenant's three SageMaker roles: jobs (the step role), pipelines, and models/endpoints. Every statement
# names this tenant's own resources by static ARN, or by the mlops:tenant tag where SageMaker names the
# resource (pipeline jobs). Each policy is also its role's permissions boundary: a policy attached later by a
# platform role cannot widen what the role may do. The deploy roles are in the CI module (GitLab trusts them).
resource "aws_iam_role" "tenant" {
  count = local.access

  name                 = local.names.role
  description          = local.role_descriptions.job
  permissions_boundary = aws_iam_policy.tenant[0].arn
  tags                 = local.tags
  assume_role_policy   = local.sagemaker_trust
}

resource "aws_iam_policy" "tenant" {
  count = local.access

  name        = "${local.names.role}-access"
  description = "What tenant ${var.tenant_id}'s jobs may touch: its own bucket (writes under runs/), key, code and images."
  policy      = local.policy
  tags        = local.tags
}

resource "aws_iam_role_policy_attachment" "tenant" {
  count = local.access

  role       = aws_iam_role.tenant[0].name
  policy_arn = aws_iam_policy.tenant[0].arn
}

resource "aws_iam_role" "service" {
  for_each = var.enabled ? toset(["pipeline", "inference"]) : toset([])

  name                 = local.role_names[each.key]
  description          = local.role_descriptions[each.key]
  permissions_boundary = aws_iam_policy.service[each.key].arn
  tags                 = local.tags
  assume_role_policy   = local.sagemaker_trust
}

resource "aws_iam_policy" "service" {
  for_each = var.enabled ? toset(["pipeline", "inference"]) : toset([])

  name        = "${local.role_names[each.key]}-access"
  description = local.role_descriptions[each.key]
  policy      = local.policies[each.key]
  tags        = local.tags
}

resource "aws_iam_role_policy_attachment" "service" {
  for_each = aws_iam_role.service

  role       = each.value.name
  policy_arn = aws_iam_policy.service[each.key].arn
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
