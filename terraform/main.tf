# The root: reads platform.yaml and the tenant registry (the same files Python reads), builds the shared
# platform once and one tenant module per tenant of the registry. A disabled tenant (`enabled: false`) keeps
# its module, with its data only (bucket, KMS key, model package groups: modules/tenant says why): a
# `removed` block cannot name one instance of a `for_each`, and `prevent_destroy` cannot be switched off.

locals {
  platform_file = var.platform_file != "" ? var.platform_file : "${path.root}/../platform.yaml"
  tenants_dir   = var.tenants_dir != "" ? var.tenants_dir : "${path.root}/../tenants"
  platform      = yamldecode(file(local.platform_file))
  region        = try(local.platform.region, "us-east-1")
  tiers         = keys(local.platform.tiers)

  tenant_files = fileset(local.tenants_dir, "*.{yaml,yml}")
  registry     = [for file in local.tenant_files : yamldecode(file("${local.tenants_dir}/${file}"))]
  tenants      = { for tenant in local.registry : tenant.id => tenant }
}

data "aws_caller_identity" "current" {}

# Every tenant's names at once (each tenant module sees only its own): a precondition on the `names` output
# refuses the plan when two tenants, disabled ones included, would get the same resource name (acme +
# house-prices and acme-house + prices), as `mlops tenants validate` and `mlops infra plan|apply` do before
# Terraform runs.
module "names" {
  source = "./modules/naming"

  project    = local.platform.project
  account_id = data.aws_caller_identity.current.account_id
  region     = local.region
  models     = local.platform.models
  tiers      = local.tiers
  tenants    = { for id, tenant in local.tenants : id => { models = tenant.models } }
}

module "platform" {
  source = "./modules/platform"

  project            = local.platform.project
  account_id         = data.aws_caller_identity.current.account_id
  region             = local.region
  models             = local.platform.models
  tiers              = local.tiers
  lambda_package_dir = var.lambda_package_dir
  force_destroy      = var.force_destroy
  # On the local AWS the project's local Lambda runtime polls the queues instead (docs/local-aws.md).
  event_source_mappings_enabled = !local.local_aws
  # moto evaluates bucket-policy conditions without the request's context (docs/security.md).
  bucket_policy_enabled = !local.local_aws
}

module "tenant" {
  source   = "./modules/tenant"
  for_each = local.tenants

  project              = local.platform.project
  account_id           = data.aws_caller_identity.current.account_id
  region               = local.region
  tenant_id            = each.key
  enabled              = try(each.value.enabled, true)
  tier                 = each.value.tier
  models               = each.value.models
  tags                 = try(each.value.tags, {})
  uploads_queue_arn    = module.platform.uploads_queue_arn
  artifacts_bucket_arn = module.platform.artifacts_bucket_arn
  ecr_repository_arns  = [for model in each.value.models : module.platform.ecr_repository_arns[model]]
  platform_kms_key_arn = module.platform.kms_key_arn
  force_destroy        = var.force_destroy
  # moto evaluates bucket-policy conditions without the request's context (docs/security.md).
  bucket_policy_enabled = !local.local_aws
}

# Keyless CI: GitLab's OIDC provider, the build/train/infra roles and a deploy role per environment and tenant (docs/security.md).
module "ci" {
  source = "./modules/ci"
  count  = var.gitlab != null ? 1 : 0

  project           = local.platform.project
  account_id        = data.aws_caller_identity.current.account_id
  region            = local.region
  gitlab            = var.gitlab
  infra_policy_arns = var.ci_infra_policy_arns
  platform = {
    artifacts_bucket_arn = module.platform.artifacts_bucket_arn
    kms_key_arn          = module.platform.kms_key_arn
    ecr_repository_arns  = values(module.platform.ecr_repository_arns)
    trigger_function_arn = module.platform.function_arns["trigger"]
    ledger_table_arn     = module.platform.table_arns["ledger"]
  }
  tenants = {
    for id, tenant in module.tenant : id => { models = local.tenants[id].models, kms_key_arn = tenant.kms_key_arn } if tenant.enabled
  }
}
