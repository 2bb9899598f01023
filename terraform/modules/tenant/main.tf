# One tenant: its bucket (data/, runs/, models/), the role its pipeline executions run as, a model package
# group per model it trains, and the EventBridge rule that turns its data uploads into build requests.
# Everything carries the tenant's cost-allocation tags (mlops.config.tenants.Tenant.cost_tags).

module "names" {
  source = "../naming"

  project    = var.project
  account_id = var.account_id
  region     = var.region
  tenants    = { (var.tenant_id) = { models = var.models } }
}

locals {
  names = module.names.tenants[var.tenant_id]
  # Same order as Tenant.cost_tags: the registry's tags win over the platform's own.
  tags = merge({
    "mlops:project" = var.project
    "mlops:tenant"  = var.tenant_id
    "mlops:tier"    = var.tier
  }, var.tags)
}

resource "aws_s3_bucket" "tenant" {
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
  rule      = aws_cloudwatch_event_rule.uploads.name
  target_id = "uploads-queue"
  arn       = var.uploads_queue_arn
}

resource "aws_iam_role" "tenant" {
  name = local.names.role
  tags = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "sagemaker.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "tenant" {
  name = "tenant"
  role = aws_iam_role.tenant.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "OwnBucket"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
        Resource = [aws_s3_bucket.tenant.arn, "${aws_s3_bucket.tenant.arn}/*"]
      },
      {
        Sid      = "PipelineCode"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.artifacts_bucket_arn}/*"]
      },
      {
        Sid      = "Images"
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
        Resource = var.ecr_repository_arns
      },
      {
        Sid      = "EcrToken"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      },
      {
        Sid      = "OwnModelPackages"
        Effect   = "Allow"
        Action   = ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"]
        Resource = flatten([for group in aws_sagemaker_model_package_group.model : [group.arn, replace("${group.arn}/*", "model-package-group", "model-package")]])
      },
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "arn:aws:logs:${var.region}:${var.account_id}:log-group:/aws/sagemaker/*"
      },
    ]
  })
}

resource "aws_sagemaker_model_package_group" "model" {
  for_each = local.names.model_package_groups

  model_package_group_name        = each.value
  model_package_group_description = "Model versions of ${each.key} trained for tenant ${var.tenant_id}."
  tags                            = merge(local.tags, { "mlops:model" = each.key })
}
