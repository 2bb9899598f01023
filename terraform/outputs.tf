output "account_id" {
  description = "The AWS account the root was applied to."
  value       = data.aws_caller_identity.current.account_id
}

output "region" {
  description = "The region of the platform (platform.yaml)."
  value       = local.region
}

output "names" {
  description = "Every resource name: `platform` like Names.platform_names(), `tenants` like Names.tenant_names() by id."
  value = {
    platform = module.platform.names
    tenants  = { for id, tenant in module.tenant : id => tenant.names if tenant.enabled }
  }

  # Each tenant module sees only its own names: the registry-wide naming module (main.tf) finds the shared ones.
  precondition {
    condition     = length(module.names.shared_names) == 0
    error_message = "Two tenants would get the same resource names: ${join("; ", [for key, owners in module.names.shared_names : "${key} (tenants ${join(", ", owners)})"])}. Rename one of the tenants (`mlops tenants validate` names the files)."
  }
}

output "platform" {
  description = "The shared platform's identifiers: buckets, repositories, queues, tables, topic, roles, functions."
  value = {
    artifacts_bucket        = module.platform.artifacts_bucket
    ecr_repository_urls     = module.platform.ecr_repository_urls
    queue_urls              = module.platform.queue_urls
    dead_letter_queue_urls  = module.platform.dead_letter_queue_urls
    tables                  = module.platform.tables
    notifications_topic_arn = module.platform.notifications_topic_arn
    service_role_arns       = module.platform.service_role_arns
    function_arns           = module.platform.function_arns
  }
}

output "tenants" {
  description = "Each enabled tenant's bucket, role and model package groups, with its cost tags."
  value = {
    for id, tenant in module.tenant : id => {
      bucket_arn               = tenant.bucket_arn
      role_arn                 = tenant.role_arn
      pipeline_role_arn        = tenant.pipeline_role_arn
      inference_role_arn       = tenant.inference_role_arn
      model_package_group_arns = tenant.model_package_group_arns
      tags                     = tenant.tags
    } if tenant.enabled
  }
}

output "disabled_tenants" {
  description = "Each disabled tenant's kept data: bucket, KMS key and model package group ARNs (no role, no upload rule)."
  value = {
    for id, tenant in module.tenant : id => {
      bucket_arn               = tenant.bucket_arn
      kms_key_arn              = tenant.kms_key_arn
      model_package_group_arns = tenant.model_package_group_arns
    } if !tenant.enabled
  }
}

output "ci" {
  description = "Keyless CI: the OIDC provider, each purpose's role ARN (MLOPS_AWS_ROLE_ARN_<PURPOSE>), audience and accepted subjects."
  value = try({
    oidc_provider_arn  = module.ci[0].oidc_provider_arn
    role_arns          = module.ci[0].role_arns
    deploy_role_arns   = module.ci[0].deploy_role_arns
    deploy_role_prefix = module.ci[0].deploy_role_prefix
    audiences          = module.ci[0].audiences
    subjects           = module.ci[0].subjects
  }, null)
}
