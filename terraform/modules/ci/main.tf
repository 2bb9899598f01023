# Keyless CI: an IAM OIDC provider for the GitLab instance, one role per purpose (build, train, infra) and
# one deploy role per environment and tenant. Each role trusts only tokens with its own audience
# (`<prefix>-<purpose>`, the `aud` that ci-templates requests for that purpose) and a `sub` naming the ml-ops
# project and a protected ref; deploy and infra accept the default branch only. A deploy role's `sub` must
# also say that the job's environment is protected and of the role's tier (GitLab's configurable sub:
# `environment_protected` and `deployment_tier`, docs/security.md), so a staging job can never assume a
# production role; its policy names that tenant's endpoints of that environment only.

module "names" {
  source = "../naming"

  project    = var.project
  account_id = var.account_id
  region     = var.region
  tenants    = { for id, tenant in var.tenants : id => { models = tenant.models } }
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
    build = local.protected_subs
    train = local.protected_subs
    infra = [local.default_branch_sub]
  }
  # A deploy job's sub with the project's sub claim components set to project_path, ref_type, ref,
  # environment_protected, deployment_tier (GitLab 18.7+).
  deploy_sub      = { for env in module.names.environments : env => "${local.default_branch_sub}:environment_protected:true:deployment_tier:${env}" }
  deploy_audience = "${var.gitlab.audience_prefix}-deploy"

  sm   = "arn:aws:sagemaker:${var.region}:${var.account_id}"
  role = "arn:aws:iam::${var.account_id}:role"
  # "<environment>-<tenant>" -> what that deploy role works on.
  deployments = { for pair in setproduct(module.names.environments, keys(var.tenants)) : "${pair[0]}-${pair[1]}" => {
    environment = pair[0]
    tenant      = pair[1]
    role        = module.names.tenants[pair[1]].deploy_roles[pair[0]]
    endpoints   = values(module.names.tenants[pair[1]]["${pair[0]}_endpoints"])
    groups      = values(module.names.tenants[pair[1]].model_package_groups)
    bucket      = module.names.tenants[pair[1]].bucket
    inference   = "${local.role}/${module.names.tenants[pair[1]].inference_role}"
    kms_key_arn = var.tenants[pair[1]].kms_key_arn
  } }
  tags = merge({ "mlops:project" = var.project, "mlops:component" = "ci" }, var.tags)

  pipelines      = "arn:aws:sagemaker:${var.region}:${var.account_id}:pipeline/${var.project}-*"
  pipeline_roles = [for id in keys(var.tenants) : "${local.role}/${module.names.tenants[id].pipeline_role}"]
}

resource "aws_iam_openid_connect_provider" "gitlab" {
  count = var.gitlab.create_provider ? 1 : 0

  url            = var.gitlab.url
  client_id_list = concat([for purpose in keys(local.subs) : "${var.gitlab.audience_prefix}-${purpose}"], [local.deploy_audience])
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
        # Each tenant's pipeline runs as that tenant's pipeline role (CreatePipeline/UpdatePipeline RoleArn).
        Sid       = "PassPipelineRoles"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = length(local.pipeline_roles) > 0 ? local.pipeline_roles : ["${local.role}/${var.project}-pipeline-none"]
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

# deploy: one role per environment and tenant. It gates, approves and rolls out that tenant's model versions
# to that environment's endpoints, whose models run as the tenant's inference role.
resource "aws_iam_role" "deploy" {
  for_each = local.deployments

  name                 = each.value.role
  description          = "GitLab CI ${each.value.environment} deploy jobs of tenant ${each.value.tenant} (${var.gitlab.project_path}, OIDC)."
  max_session_duration = var.max_session_duration
  tags                 = merge(local.tags, { "mlops:purpose" = "deploy", "mlops:environment" = each.value.environment, "mlops:tenant" = each.value.tenant })
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "GitLabCiDeploy"
      Effect    = "Allow"
      Principal = { Federated = local.provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.issuer}:aud" = local.deploy_audience
          "${local.issuer}:sub" = local.deploy_sub[each.value.environment]
        }
      }
    }]
  })

  depends_on = [aws_iam_openid_connect_provider.gitlab]
}

resource "aws_iam_role_policy" "deploy" {
  for_each = local.deployments

  name = "deploy"
  role = aws_iam_role.deploy[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The environment's endpoints of the tenant, by exact name; UpdateEndpoint and CreateEndpoint also
        # name the endpoint config they switch to.
        Sid    = "Endpoints"
        Effect = "Allow"
        Action = ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:InvokeEndpoint", "sagemaker:ListTags"]
        Resource = concat([for endpoint in each.value.endpoints : "${local.sm}:endpoint/${endpoint}"],
        [for endpoint in each.value.endpoints : "${local.sm}:endpoint-config/${endpoint}-*"])
      },
      {
        # Models and endpoint configs are named <endpoint>-<package version>-<digest>. A name prefix cannot
        # tell tenant acme's from acme-eu's, so creation requires the tenant's tag and the rest reads it.
        Sid       = "CreateModelsAndConfigs"
        Effect    = "Allow"
        Action    = ["sagemaker:CreateModel", "sagemaker:CreateEndpointConfig"]
        Resource  = flatten([for endpoint in each.value.endpoints : ["${local.sm}:model/${endpoint}-*", "${local.sm}:endpoint-config/${endpoint}-*"]])
        Condition = { StringEquals = { "aws:RequestTag/mlops:tenant" = each.value.tenant } }
      },
      {
        Sid       = "ReadModelsAndConfigs"
        Effect    = "Allow"
        Action    = ["sagemaker:DescribeModel", "sagemaker:DescribeEndpointConfig", "sagemaker:ListTags"]
        Resource  = flatten([for endpoint in each.value.endpoints : ["${local.sm}:model/${endpoint}-*", "${local.sm}:endpoint-config/${endpoint}-*"]])
        Condition = { StringEquals = { "aws:ResourceTag/mlops:tenant" = each.value.tenant } }
      },
      {
        Sid      = "TagOwnResources"
        Effect   = "Allow"
        Action   = "sagemaker:AddTags"
        Resource = flatten([for endpoint in each.value.endpoints : ["${local.sm}:endpoint/${endpoint}", "${local.sm}:model/${endpoint}-*", "${local.sm}:endpoint-config/${endpoint}-*"]])
        Condition = {
          StringEquals         = { "aws:RequestTag/mlops:tenant" = each.value.tenant }
          StringEqualsIfExists = { "aws:ResourceTag/mlops:tenant" = each.value.tenant }
        }
      },
      {
        # The gate reads the tenant's versions; approval (UpdateModelPackage) belongs to the deploy path alone.
        # ListModelPackages takes the optional resource type model-package (Service Authorization Reference);
        # the deploy path always lists one group. Exact group names: acme never matches acme-eu.
        Sid    = "ModelPackages"
        Effect = "Allow"
        Action = ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages", "sagemaker:UpdateModelPackage"]
        Resource = concat([for group in each.value.groups : "${local.sm}:model-package-group/${group}"],
        [for group in each.value.groups : "${local.sm}:model-package/${group}/*"])
      },
      {
        Sid       = "PassInferenceRole"
        Effect    = "Allow"
        Action    = "iam:PassRole"
        Resource  = each.value.inference
        Condition = { StringEquals = { "iam:PassedToService" = "sagemaker.amazonaws.com" } }
      },
      {
        # The rollback alarms of the environment's endpoints (mlops.aws.endpoints.alarm_names).
        Sid    = "RollbackAlarms"
        Effect = "Allow"
        Action = ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"]
        Resource = flatten([for endpoint in each.value.endpoints : [
          "arn:aws:cloudwatch:${var.region}:${var.account_id}:alarm:${endpoint}-invocation-5xx",
          "arn:aws:cloudwatch:${var.region}:${var.account_id}:alarm:${endpoint}-model-latency",
        ]])
      },
      {
        # The gate reads the evaluation reports of the tenant's runs.
        Sid      = "EvaluationReports"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "arn:aws:s3:::${each.value.bucket}/runs/*"
      },
      {
        Sid       = "TenantKeyDecrypt"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = each.value.kms_key_arn
        Condition = { StringEquals = { "kms:ViaService" = "s3.${var.region}.amazonaws.com" } }
      },
      {
        # Whether the ledger table is there to record into (mlops.aws.endpoints.LedgerDeploymentLog.exists).
        Sid      = "LedgerTable"
        Effect   = "Allow"
        Action   = "dynamodb:DescribeTable"
        Resource = var.platform.ledger_table_arn
      },
      {
        # The deployment log in the ledger table (encrypted with the platform key): items keyed
        # `DEPLOY#<endpoint>`, only this role's endpoints, by exact value (acme's never match acme-eu's).
        # Null = false: a request without partition keys (Scan) is not allowed by an empty ForAllValues.
        Sid      = "DeploymentLog"
        Effect   = "Allow"
        Action   = ["dynamodb:PutItem", "dynamodb:Query"]
        Resource = var.platform.ledger_table_arn
        Condition = {
          "ForAllValues:StringEquals" = { "dynamodb:LeadingKeys" = [for endpoint in each.value.endpoints : "DEPLOY#${endpoint}"] }
          Null                        = { "dynamodb:LeadingKeys" = "false" }
        }
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

resource "aws_iam_role_policy_attachment" "infra" {
  for_each = toset(var.infra_policy_arns)

  role       = aws_iam_role.ci["infra"].name
  policy_arn = each.value
}
