output "names" {
  description = "Names of the shared platform, shaped like mlops.naming.Names.platform_names()."
  value       = module.names.platform
}

output "artifacts_bucket" {
  description = "Name of the artifacts bucket."
  value       = aws_s3_bucket.artifacts.bucket
}

output "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket."
  value       = aws_s3_bucket.artifacts.arn
}

output "ecr_repository_urls" {
  description = "Repository URL of each model's ECR repository, by model."
  value       = { for model, repo in aws_ecr_repository.model : model => repo.repository_url }
}

output "ecr_repository_arns" {
  description = "ARN of each model's ECR repository, by model."
  value       = { for model, repo in aws_ecr_repository.model : model => repo.arn }
}

output "queue_urls" {
  description = "URL of each queue by purpose (tier names, uploads, status)."
  value       = { for key, queue in aws_sqs_queue.queue : key => queue.id }
}

output "dead_letter_queue_urls" {
  description = "URL of each queue's dead-letter queue, by the same purpose."
  value       = { for key, queue in aws_sqs_queue.dlq : key => queue.id }
}

output "uploads_queue_arn" {
  description = "ARN of the queue that receives tenant upload events."
  value       = aws_sqs_queue.queue["uploads"].arn
}

output "tables" {
  description = "DynamoDB table names: ledger and slots."
  value       = { ledger = aws_dynamodb_table.ledger.name, slots = aws_dynamodb_table.slots.name }
}

output "notifications_topic_arn" {
  description = "ARN of the SNS notifications topic."
  value       = aws_sns_topic.notifications.arn
}

output "service_role_arns" {
  description = "ARN of each platform service role (lambda)."
  value       = { lambda = aws_iam_role.lambda.arn }
}

output "function_arns" {
  description = "ARN of each Lambda function (trigger, dispatcher, status)."
  value       = { for key, fn in aws_lambda_function.function : key => fn.arn }
}

output "kms_key_arn" {
  description = "ARN of the platform KMS key (artifacts, images, tables, queues, topic, logs, Lambda environment)."
  value       = aws_kms_key.this.arn
}

output "table_arns" {
  description = "DynamoDB table ARNs: ledger and slots."
  value       = { ledger = aws_dynamodb_table.ledger.arn, slots = aws_dynamodb_table.slots.arn }
}
