# The shared platform: artifacts bucket, one ECR repository per model, the ledger and tier-slot tables,
# request/event queues with DLQs, the notification topic, service roles and the three Lambda functions.
# Hardening (KMS, least privilege, retention) comes later; this is the simple, correct first version.

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
  # SQS event sources of the Lambda functions: queue key -> function key.
  event_sources = { uploads = "trigger", status = "status" }
}

# -- storage -----------------------------------------------------------------------------------------
resource "aws_s3_bucket" "artifacts" {
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

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
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
}

# -- queues and notifications --------------------------------------------------------------------------
resource "aws_sqs_queue" "dlq" {
  for_each = module.names.dead_letter_queues

  name                      = each.value
  message_retention_seconds = 1209600
  tags                      = local.tags
}

# Redrive and access policy are set when the queue is created: the provider waits ~25 s for SQS
# attributes to settle after each create or change, so one resource per queue keeps that to one wait.
# Real SQS rejects a redrive policy naming a DLQ that does not exist yet, hence the reference.
resource "aws_sqs_queue" "queue" {
  for_each = module.names.queues

  name                       = each.value
  visibility_timeout_seconds = 180
  tags                       = local.tags
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
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
        ArnLike = { "aws:SourceArn" = "arn:aws:events:${var.region}:${var.account_id}:rule/${var.project}-*" }
      }
    }]
  }) : null
}

resource "aws_sns_topic" "notifications" {
  name = local.names.notifications_topic
  tags = local.tags
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
resource "aws_iam_role" "lambda" {
  name = module.names.service_roles["lambda"]
  tags = local.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
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
        Action   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
        Resource = values(local.queue_arn)
      },
      {
        Sid      = "Tables"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:TransactWriteItems"]
        Resource = [aws_dynamodb_table.ledger.arn, aws_dynamodb_table.slots.arn]
      },
      {
        Sid      = "Pipelines"
        Effect   = "Allow"
        Action   = ["sagemaker:StartPipelineExecution", "sagemaker:DescribePipelineExecution", "sagemaker:AddTags"]
        Resource = [for pipeline in values(local.names.pipelines) : "arn:aws:sagemaker:${var.region}:${var.account_id}:pipeline/${pipeline}*"]
      },
      {
        Sid      = "Notify"
        Effect   = "Allow"
        Action   = "sns:Publish"
        Resource = aws_sns_topic.notifications.arn
      },
    ]
  })
}

resource "aws_iam_role" "sagemaker" {
  name = module.names.service_roles["sagemaker"]
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

resource "aws_iam_role_policy" "sagemaker" {
  name = "platform"
  role = aws_iam_role.sagemaker.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "PullImages"
        Effect   = "Allow"
        Action   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
        Resource = [for repo in aws_ecr_repository.model : repo.arn]
      },
      {
        Sid      = "EcrToken"
        Effect   = "Allow"
        Action   = "ecr:GetAuthorizationToken"
        Resource = "*"
      },
      {
        Sid      = "Artifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:ListBucket"]
        Resource = [aws_s3_bucket.artifacts.arn, "${aws_s3_bucket.artifacts.arn}/*"]
      },
    ]
  })
}

# -- functions ---------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "function" {
  for_each = module.names.log_groups

  name = each.value
  tags = local.tags
}

resource "aws_lambda_function" "function" {
  for_each = local.functions

  function_name    = each.value
  role             = aws_iam_role.lambda.arn
  runtime          = var.lambda_runtime
  handler          = "handler.handler"
  filename         = "${var.lambda_package_dir}/${each.key}.zip"
  source_code_hash = filebase64sha256("${var.lambda_package_dir}/${each.key}.zip")
  timeout          = 60
  memory_size      = 256
  tags             = local.tags

  environment {
    variables = {
      MLOPS_PROJECT             = var.project
      MLOPS_LEDGER_TABLE        = aws_dynamodb_table.ledger.name
      MLOPS_SLOTS_TABLE         = aws_dynamodb_table.slots.name
      MLOPS_NOTIFICATIONS_TOPIC = aws_sns_topic.notifications.arn
      MLOPS_ARTIFACTS_BUCKET    = aws_s3_bucket.artifacts.bucket
    }
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.lambda]
}

resource "aws_lambda_event_source_mapping" "queue" {
  for_each = local.event_sources

  event_source_arn        = aws_sqs_queue.queue[each.key].arn
  function_name           = aws_lambda_function.function[each.value].arn
  enabled                 = var.event_source_mappings_enabled
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}
