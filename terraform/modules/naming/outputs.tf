output "platform" {
  description = "Names of the shared platform, shaped like mlops.naming.Names.platform_names()."
  value       = local.platform
}

output "tenants" {
  description = "Names of every tenant by id, each shaped like mlops.naming.Names.tenant_names()."
  value       = local.tenants
}

output "shared_names" {
  description = "Names that two or more tenants would get, as `<kind> <name>` => tenant ids: empty for a valid registry (the root refuses a plan otherwise)."
  value       = local.shared_names
}

output "queues" {
  description = "Every SQS queue that has a dead-letter queue, by purpose (tier names, uploads, status)."
  value       = local.queues
}

output "dead_letter_queues" {
  description = "The dead-letter queue of each queue in `queues`, by the same key."
  value       = { for key, queue in local.queues : key => "${queue}-dlq" }
}

output "service_roles" {
  description = "IAM roles of the platform services (lambda; SageMaker runs as each tenant's own roles)."
  value       = { for purpose in ["lambda"] : purpose => "${var.project}-svc-${purpose}" }
}

output "ci_roles" {
  description = "IAM roles GitLab CI assumes with its OIDC token, by purpose (build, train, infra); like Names.ci_role(). Deploy roles are per environment and tenant (`tenants[*].deploy_roles`)."
  value       = { for purpose in ["build", "train", "infra"] : purpose => "${var.project}-ci-${purpose}" }
}

output "log_groups" {
  description = "CloudWatch log group of each Lambda function, by function."
  value       = { for fn in local.functions : fn => "/aws/lambda/${var.project}-${fn}" }
}

output "dispatch_schedule" {
  description = "EventBridge rule invoking the dispatcher Lambda on a schedule."
  value       = "${var.project}-dispatch-schedule"
}

output "status_rule" {
  description = "EventBridge rule sending SageMaker pipeline status changes to the status queue."
  value       = "${var.project}-pipeline-status"
}

output "environments" {
  description = "Deployment environments (staging, production): each has its own endpoints and deploy role per tenant."
  value       = local.environments
}
