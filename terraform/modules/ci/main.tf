# Keyless CI: an IAM OIDC provider for the GitLab instance and one role per purpose (build, train, deploy,
# infra). Each role trusts only tokens with its own audience (`<prefix>-<purpose>`, the `aud` that
# ci-templates requests for that purpose) and a `sub` naming the ml-ops project and a protected ref;
# deploy and infra accept the default branch only. GitLab's `sub` cannot carry the environment, so
# protected environments (who may run a deploy job) stay a GitLab setting (docs/security.md).

module "names" {
  source = "../naming"

  project    = var.project
  account_id = var.account_id
  region     = var.region
}

locals {
  issuer       = trimprefix(var.gitlab.url, "https://")
  provider_arn = "arn:aws:iam::${var.account_id}:oidc-provider/${local.issuer}"
  prefix       = "project_path:${var.gitlab.project_path}"

  protected_subs = concat(
    [for branch in var.gitlab.protected_branches : "${local.prefix}:ref_type:branch:ref:${branch}"],
    [for tag in var.gitlab.protected_tags : "${local.prefix}:ref_type:tag:ref:${tag}"],
  )
  default_branch_sub = "${local.prefix}:ref_type:branch:ref:${var.gitlab.default_branch}"

  # purpose -> the refs its jobs may run from
  subs = {
    build  = local.protected_subs
    train  = local.protected_subs
    deploy = [local.default_branch_sub]
    infra  = [local.default_branch_sub]
  }
  tags = merge({ "mlops:project" = var.project, "mlops:component" = "ci" }, var.tags)

  pipelines  = "arn:aws:sagemaker:${var.region}:${var.account_id}:pipeline/${var.project}-*"
  tenant_ids = "arn:aws:iam::${var.account_id}:role/${var.project}-tenant-*"
}

resource "aws_iam_openid_connect_provider" "gitlab" {
  count = var.gitlab.create_provider ? 1 : 0

  url            = var.gitlab.url
  client_id_list = [for purpose in keys(local.subs) : "${var.gitlab.audience_prefix}-${purpose}"]
  tags           = local.tags
}

resource "aws_iam_role" "ci" {
  for_each = local.subs

  name                 = module.names.ci_roles[each.key]
  description          = "GitLab CI ${each.key} jobs of ${var.gitlab.project_path} (OIDC, audience ${var.gitlab.audience_prefix}-${each.key})."
  max_session_duration = var.max_session_duration
  tags                 = merge(local.tags, { "mlops:purpose" = each.key })
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "GitLabCi${title(each.key)}"
      Effect    = "Allow"
      Principal = { Federated = local.provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = { "${local.issuer}:aud" = "${var.gitlab.audience_prefix}-${each.key}" }
        # StringLike only for tag patterns (v*); branch subs are exact strings either way.
        StringLike = { "${local.issuer}:sub" = each.value }
      }
    }]
  })

  depends_on = [aws_iam_openid_connect_provider.gitlab]
}

# build: push the model's image and the source bundle.
resource "aws_iam_role_policy" "build" {
  name = "build"
  role = aws_iam_role.ci["build"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "EcrToken"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      },
      {
        Sid      = "PushImages"
        Effect   = "Allow"
        Action   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer", "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart"]
        Resource = var.platform.ecr_repository_arns
      },
      {
        Sid      = "SourceBundles"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
        Resource = [var.platform.artifacts_bucket_arn, "${var.platform.artifacts_bucket_arn}/*"]
      },
      {
        Sid      = "PlatformKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.platform.kms_key_arn
      },
    ]
  })
}

# train: register the pipeline definitions and ask the trigger for executions (it admits and starts them).
resource "aws_iam_role_policy" "train" {
  name = "train"
  role = aws_iam_role.ci["train"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Pipelines"
        Effect   = "Allow"
        Action   = ["sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:DescribePipeline", "sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutions", "sagemaker:AddTags"]
        Resource = [local.pipelines, "${local.pipelines}/execution/*"]
      },
      {
        Sid       = "PassPipelineRole"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = var.platform.sagemaker_role_arn
        Condition = { StringEquals = { "iam:PassedToService" = "sagemaker.amazonaws.com" } }
      },
      {
        Sid      = "Trigger"
        Effect   = "Allow"
        Action   = "lambda:InvokeFunction"
        Resource = var.platform.trigger_function_arn
      },
      {
        Sid      = "Ledger"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:Query"]
        Resource = var.platform.ledger_table_arn
      },
      {
        Sid      = "PipelineCode"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = "${var.platform.artifacts_bucket_arn}/*"
      },
      {
        Sid      = "PlatformKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.platform.kms_key_arn
      },
    ]
  })
}

# deploy: models, endpoint configurations and endpoints of this project, run as the tenant's role.
resource "aws_iam_role_policy" "deploy" {
  name = "deploy"
  role = aws_iam_role.ci["deploy"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "Endpoints"
        Effect = "Allow"
        Action = ["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
        "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint", "sagemaker:AddTags"]
        Resource = [for kind in ["model", "endpoint-config", "endpoint"] : "arn:aws:sagemaker:${var.region}:${var.account_id}:${kind}/${var.project}-*"]
      },
      {
        # ListModelPackages takes the optional resource type model-package (Service Authorization Reference,
        # Amazon SageMaker); the deploy path always lists one group (ModelPackageGroupName), so it is scoped
        # like the rest: the project's groups and their packages, model-package/<group>/<version>.
        Sid      = "ModelPackages"
        Effect   = "Allow"
        Action   = ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages", "sagemaker:UpdateModelPackage"]
        Resource = ["arn:aws:sagemaker:${var.region}:${var.account_id}:model-package-group/${var.project}-*", "arn:aws:sagemaker:${var.region}:${var.account_id}:model-package/${var.project}-*"]
      },
      {
        Sid       = "PassTenantRoles"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = local.tenant_ids
        Condition = { StringEquals = { "iam:PassedToService" = "sagemaker.amazonaws.com" } }
      },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "infra" {
  for_each = toset(var.infra_policy_arns)

  role       = aws_iam_role.ci["infra"].name
  policy_arn = each.value
}
