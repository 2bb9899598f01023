output "names" {
  description = "Names of this tenant's resources, shaped like mlops.naming.Names.tenant_names()."
  value       = local.names
}

output "bucket_arn" {
  description = "ARN of the tenant bucket."
  value       = aws_s3_bucket.tenant.arn
}

output "enabled" {
  description = "Whether the tenant is enabled (false: only its data resources exist)."
  value       = var.enabled
}

output "role_arn" {
  description = "ARN of the role the tenant's SageMaker jobs run as, the pipeline's step role (null while the tenant is disabled)."
  value       = try(aws_iam_role.tenant[0].arn, null)
}

output "pipeline_role_arn" {
  description = "ARN of the role the tenant's pipelines run as, their RoleArn (null while the tenant is disabled)."
  value       = try(aws_iam_role.service["pipeline"].arn, null)
}

output "inference_role_arn" {
  description = "ARN of the role the tenant's SageMaker models and endpoints run as (null while the tenant is disabled)."
  value       = try(aws_iam_role.service["inference"].arn, null)
}

output "model_package_group_arns" {
  description = "ARN of each model package group, by model."
  value       = { for model, group in aws_sagemaker_model_package_group.model : model => group.arn }
}

output "tags" {
  description = "The cost-allocation tags on every resource of the tenant."
  value       = local.tags
}

output "kms_key_arn" {
  description = "ARN of the tenant's own KMS key (its bucket's default encryption)."
  value       = aws_kms_key.tenant.arn
}

output "policy_json" {
  description = "The job role's access policy (also its permissions boundary), as JSON."
  value       = local.policy
}

output "policies_json" {
  description = "Each SageMaker role's access policy (also its permissions boundary) by role (job, pipeline, inference), as JSON."
  value       = local.policies
}

output "bucket_policy_json" {
  description = "The tenant bucket's policy (TLS only, tenant key only), as JSON."
  value       = try(aws_s3_bucket_policy.tenant[0].policy, null)
}
