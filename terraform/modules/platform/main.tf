# The shared platform: the platform KMS key, the artifacts bucket, one ECR repository per model, the
# ledger and tier-slot tables, request/event queues with DLQs, the notification topic, service roles and
# the three Lambda functions. Everything at rest is encrypted with the platform key (tenant buckets have
# keys of their own, see the tenant module).

module "names" {
  source = "../naming"

  project    = var.project
  account_id = var.account_id
  region     = var.region
  models     = var.models
  tiers      = var.tiers
}

locals {
  names     = module.names.platform
  functions = local.names.functions
  tags      = merge({ "mlops:project" = var.project, "mlops:component" = "platform" }, var.tags)
  # Queue ARNs follow from their names, so the IAM policy and the queues' own access policies need not
  # wait for the queues (each create takes ~25 s against moto; see docs/terraform.md).
  queue_arn = { for key, queue in module.names.queues : key => "arn:aws:sqs:${var.region}:${var.account_id}:${queue}" }
  dlq_arn   = { for key, queue in module.names.dead_letter_queues : key => "arn:aws:sqs:${var.region}:${var.account_id}:${queue}" }
  # The queues name the key by its alias, a static string: they need not wait for the key (13 s against
  # moto), so the two ~25 s waves of queue creates start at once. SQS resolves the key when a message is
  # sent, and the alias exists long before any message can arrive (targets and mappings wait for the queues).
  kms_alias = "alias/${var.project}-platform"
  # SQS event sources of the Lambda functions: queue key -> function key.
  event_sources = { uploads = "trigger", status = "status" }
}

# -- encryption ----------------------------------------------------------------------------------------
data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109: a key policy's "*" resource is this key alone; administration stays with the account
  # checkov:skip=CKV_AWS_111: a key policy's "*" resource is this key alone; service statements carry source conditions
  # checkov:skip=CKV_AWS_356: a key policy's "*" resource is this key alone (the only form a key policy accepts)
  # The account administers the key and delegates its use to IAM policies (the service roles below).
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${var.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the functions' log groups, and only those.
  statement {
    sid       = "Logs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${var.region}:${var.account_id}:log-group:/aws/lambda/${var.project}-*"]
    }
  }

  # EventBridge rules of this project deliver to the encrypted queues; SNS reads nothing, so no grant.
  statement {
    sid       = "EventBridgeToQueues"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:events:${var.region}:${var.account_id}:rule/${var.project}-*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.project}: platform data at rest (artifacts, images, tables, queues, topic, logs, Lambda environment)."
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = local.kms_alias
  target_key_id = aws_kms_key.this.key_id
}

# -- storage -----------------------------------------------------------------------------------------
resource "aws_s3_bucket" "artifacts" {
  # checkov:skip=CKV_AWS_18: access is audited with CloudTrail S3 data events at the account level, not per bucket
  # checkov:skip=CKV_AWS_144: cross-region replication is a disaster-recovery choice of the operator, not of this template
  # checkov:skip=CKV2_AWS_62: nothing consumes events of this bucket (tenant buckets do send theirs to EventBridge)
  bucket        = local.names.artifacts_bucket
  force_destroy = var.force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

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

  depends_on = [aws_s3_bucket_versioning.artifacts]
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

module "bucket_guard" {
  source = "../bucket_guard"

  bucket_arn        = aws_s3_bucket.artifacts.arn
  kms_key_arn       = aws_kms_key.this.arn
  key_statement_sid = "OnlyThePlatformKey"
}

# TLS only, and uploads encrypted with the platform key or by the bucket's default (no encryption headers):
# the same rules as the tenant buckets (modules/bucket_guard).
resource "aws_s3_bucket_policy" "artifacts" {
  count = var.bucket_policy_enabled ? 1 : 0

  bucket = aws_s3_bucket.artifacts.id
  policy = module.bucket_guard.policy

  depends_on = [aws_s3_bucket_public_access_block.artifacts]
}

resource "aws_ecr_repository" "model" {
  for_each = local.names.ecr_repositories

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy
  tags                 = merge(local.tags, { "mlops:model" = each.key })

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.this.arn
  }
}

# Versioned images stay (deployed endpoints use them); untagged layers left by failed pushes go.
resource "aws_ecr_lifecycle_policy" "model" {
  for_each = aws_ecr_repository.model

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged images after 14 days."
      selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 14 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_dynamodb_table" "ledger" {
  name         = local.names.ledger_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"
  tags         = local.tags

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

resource "aws_dynamodb_table" "slots" {
  name         = local.names.slots_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"
  tags         = local.tags

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

# -- queues and notifications --------------------------------------------------------------------------
resource "aws_sqs_queue" "dlq" {
  for_each = module.names.dead_letter_queues

  name                      = each.value
  message_retention_seconds = 1209600
  kms_master_key_id         = local.kms_alias
  tags                      = local.tags
}

# Redrive and access policy are set when the queue is created: the provider waits ~25 s for SQS
# attributes to settle after each create or change, so one resource per queue keeps that to one wait.
# Real SQS rejects a redrive policy naming a DLQ that does not exist yet, hence the reference.
resource "aws_sqs_queue" "queue" {
  for_each = module.names.queues

  name                       = each.value
  visibility_timeout_seconds = 180
  kms_master_key_id          = local.kms_alias
  tags                       = local.tags
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = contains(keys(module.names.platform.tier_queues), each.key) ? var.tier_queue_max_receive_count : var.max_receive_count
  })
  # EventBridge rules of this project deliver tenant uploads and pipeline status changes.
  policy = contains(keys(local.event_sources), each.key) ? jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeRulesOfThisProject"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = local.queue_arn[each.key]
      Condition = {
        StringEquals = { "aws:SourceAccount" = var.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:aws:events:${var.region}:${var.account_id}:rule/${var.project}-*" }
      }
    }]
  }) : null
}

resource "aws_sns_topic" "notifications" {
  name              = local.names.notifications_topic
  kms_master_key_id = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_cloudwatch_event_rule" "pipeline_status" {
  name        = module.names.status_rule
  description = "SageMaker pipeline execution status changes, for the status Lambda (via SQS)."
  tags        = local.tags
  event_pattern = jsonencode({
    source      = ["aws.sagemaker"]
    detail-type = ["SageMaker Model Building Pipeline Execution Status Change"]
  })
}

resource "aws_cloudwatch_event_target" "pipeline_status" {
  rule      = aws_cloudwatch_event_rule.pipeline_status.name
  target_id = "status-queue"
  arn       = aws_sqs_queue.queue["status"].arn
}

# -- roles -------------------------------------------------------------------------------------------
# Lambda's documentation gives no aws:SourceArn / aws:SourceAccount for the AssumeRole of an execution role
# (aws:SourceArn applies where the function is the target), so this trust names the service only: a
# condition Lambda does not set would lock the functions out (docs/security.md, residual limits).
resource "aws_iam_role" "lambda" {
  name = module.names.service_roles["lambda"]
  tags = local.tags
  # Only Lambda functions of this account (aws:SourceAccount, as AWS's own samples condition a Lambda trust);
  # no aws:SourceArn: Lambda does not document it for execution roles.
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "lambda" {
  name = "platform"
  role = aws_iam_role.lambda.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [for group in values(module.names.log_groups) : "arn:aws:logs:${var.region}:${var.account_id}:log-group:${group}:*"]
      },
      {
        Sid      = "Queues"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ChangeMessageVisibility"]
        Resource = values(local.queue_arn)
      },
      {
        Sid      = "Tables"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:TransactWriteItems"]
        Resource = [aws_dynamodb_table.ledger.arn, aws_dynamodb_table.slots.arn]
      },
      {
        Sid    = "Pipelines"
        Effect = "Allow"
        Action = [
          "sagemaker:StartPipelineExecution", "sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutions",
          "sagemaker:ListPipelineExecutionSteps", "sagemaker:AddTags",
        ]
        # One pipeline per tenant and model (<project>-<tenant>-<model>): the platform starts them for every
        # tenant, and an inline policy listing thousands of them would exceed IAM's size limit.
        Resource = ["arn:aws:sagemaker:${var.region}:${var.account_id}:pipeline/${var.project}-*"]
      },
      {
        # The trigger reads the model's current sources (code/<model>/current.json) and resolves image tags.
        Sid      = "Sources"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "${aws_s3_bucket.artifacts.arn}/code/*"
      },
      {
        Sid      = "Images"
        Effect   = "Allow"
        Action   = ["ecr:DescribeImages", "ecr:ListImages"]
        Resource = [for repo in aws_ecr_repository.model : repo.arn]
      },
      {
        # The status function reads the registered package of a finished execution.
        Sid      = "ModelPackages"
        Effect   = "Allow"
        Action   = "sagemaker:DescribeModelPackage"
        Resource = "arn:aws:sagemaker:${var.region}:${var.account_id}:model-package/${var.project}-*/*"
      },
      {
        Sid      = "Notify"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = aws_sns_topic.notifications.arn
      },
      {
        Sid      = "PlatformKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.this.arn
      },
      {
        # X-Ray accepts no resource-level permissions.
        Sid      = "Traces"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = "*"
      },
    ]
  })
}

# -- functions ---------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "function" {
  for_each = module.names.log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

# pydantic, PyYAML, semver and Powertools for the runtime's Python (mlops.packaging.build_layer).
resource "aws_lambda_layer_version" "dependencies" {
  layer_name               = module.names.platform.lambda_layer
  filename                 = "${var.lambda_package_dir}/layer.zip"
  source_code_hash         = filebase64sha256("${var.lambda_package_dir}/layer.zip")
  compatible_runtimes      = [var.lambda_runtime]
  compatible_architectures = ["x86_64"]

  lifecycle {
    precondition {
      condition     = trimspace(file("${var.lambda_package_dir}/layer.runtime")) == var.lambda_runtime
      error_message = "The layer in lambda_package_dir was built for another Python than lambda_runtime: build it for ${var.lambda_runtime} (mlops.packaging.build_layer)."
    }
  }
}

resource "aws_lambda_function" "function" {
  # checkov:skip=CKV_AWS_116: invoked through SQS event source mappings and the scheduler; failed messages go to each queue's DLQ
  # checkov:skip=CKV_AWS_117: calls only AWS APIs; a VPC would add NAT or endpoints and nothing to isolate
  # checkov:skip=CKV_AWS_272: the zips are built reproducibly by mlops.packaging and pinned by source_code_hash
  for_each = local.functions

  function_name    = each.value
  role             = aws_iam_role.lambda.arn
  runtime          = var.lambda_runtime
  handler          = "handler.handler"
  layers           = [aws_lambda_layer_version.dependencies.arn]
  filename         = "${var.lambda_package_dir}/${each.key}.zip"
  source_code_hash = filebase64sha256("${var.lambda_package_dir}/${each.key}.zip")
  timeout          = 60
  memory_size      = 256
  kms_key_arn      = aws_kms_key.this.arn
  tags             = local.tags

  reserved_concurrent_executions = var.reserved_concurrency[each.key]

  tracing_config {
    mode = "Active"
  }

  environment {
    variables = {
      MLOPS_PROJECT             = var.project
      MLOPS_ROOT                = "/var/task/registry" # the tenant registry packaged with the code
      MLOPS_LEDGER_TABLE        = aws_dynamodb_table.ledger.name
      MLOPS_SLOTS_TABLE         = aws_dynamodb_table.slots.name
      MLOPS_NOTIFICATIONS_TOPIC = aws_sns_topic.notifications.arn
      MLOPS_ARTIFACTS_BUCKET    = aws_s3_bucket.artifacts.bucket
    }
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.lambda]
}

# The dispatcher admits queued requests as tiers free up (the trigger starts a build at once when its tier
# has room; the status function frees the slot). One minute is EventBridge's finest rate. Only where AWS
# invokes the functions: on the local AWS the local runtime runs the dispatcher, and moto's EventBridge
# stops delivering S3 events to every rule of the bus once a schedule rule exists.
resource "aws_cloudwatch_event_rule" "dispatch_schedule" {
  count = var.event_source_mappings_enabled ? 1 : 0

  name                = module.names.dispatch_schedule
  description         = "Run the dispatcher: admit queued build requests while tiers have room."
  schedule_expression = "rate(1 minute)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "dispatch_schedule" {
  count = var.event_source_mappings_enabled ? 1 : 0

  rule      = aws_cloudwatch_event_rule.dispatch_schedule[0].name
  target_id = "dispatcher"
  arn       = aws_lambda_function.function["dispatcher"].arn
}

resource "aws_lambda_permission" "dispatch_schedule" {
  count = var.event_source_mappings_enabled ? 1 : 0

  statement_id  = "dispatch-schedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["dispatcher"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.dispatch_schedule[0].arn
}

resource "aws_lambda_event_source_mapping" "queue" {
  for_each = local.event_sources

  event_source_arn        = aws_sqs_queue.queue[each.key].arn
  function_name           = aws_lambda_function.function[each.value].arn
  enabled                 = var.event_source_mappings_enabled
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}
