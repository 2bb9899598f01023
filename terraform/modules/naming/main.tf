# The same names as mlops/naming.py, as plain string templates. A test applies the root and compares
# every output below with mlops.naming.Names, so a change here without the same change there fails.
locals {
  functions = ["trigger", "dispatcher", "status"]
  # Deployment environments (mlops.naming.ENVIRONMENTS): each has its own endpoints and deploy role per tenant.
  environments = ["staging", "production"]

  tier_queues   = { for tier in var.tiers : tier => "${var.project}-requests-${tier}" }
  uploads_queue = "${var.project}-uploads"
  status_queue  = "${var.project}-status"
  queues = merge(local.tier_queues, {
    uploads = local.uploads_queue
    status  = local.status_queue
  })

  platform = {
    artifacts_bucket    = "${var.project}-artifacts-${var.account_id}-${var.region}"
    ecr_repositories    = { for model in var.models : model => "${var.project}/${model}" }
    ledger_table        = "${var.project}-ledger"
    slots_table         = "${var.project}-tier-slots"
    tier_queues         = local.tier_queues
    uploads_queue       = local.uploads_queue
    status_queue        = local.status_queue
    notifications_topic = "${var.project}-notifications"
    functions           = { for fn in local.functions : fn => "${var.project}-${fn}" }
    lambda_layer        = "${var.project}-lambda-deps"
  }

  tenants = {
    for id, tenant in var.tenants : id => merge({
      bucket = "${var.project}-tenant-${id}-${var.account_id}"
      # The roles differ in the word after the project, never in a suffix (mlops.naming says why).
      role                 = "${var.project}-tenant-${id}"
      pipeline_role        = "${var.project}-pipeline-${id}"
      inference_role       = "${var.project}-inference-${id}"
      deploy_roles         = { for env in local.environments : env => "${var.project}-deploy-${env}-${id}" }
      upload_rule          = "${var.project}-${id}-uploads"
      model_package_groups = { for model in tenant.models : model => "${var.project}-${id}-${model}" }
      pipelines            = { for model in tenant.models : model => "${var.project}-${id}-${model}" }
      }, {
      for env in local.environments : "${env}_endpoints" => { for model in tenant.models : model => "${var.project}-${env}-${id}-${model}" }
    })
  }

  # "<kind> <name>" => the tenants that get that name. Two tenants must never share one: tenant acme with model
  # house-prices and tenant acme-house with model prices would both get <project>-acme-house-prices (pipeline,
  # model package group, endpoint), and with them each other's data by policy. Every kind of `tenants` is
  # compared, so a name added there is covered too; mlops.config.tenants compares Names.tenant_names the same
  # way, and the root refuses a plan while `shared_names` is not empty.
  name_owners = {
    for entry in flatten([
      for id, names in local.tenants : [
        for kind, value in names : [
          for name in try(values(value), [value]) : { key = "${kind} ${name}", tenant = id }
        ]
      ]
    ]) : entry.key => entry.tenant...
  }
  shared_names = { for key, owners in local.name_owners : key => distinct(owners) if length(distinct(owners)) > 1 }
}
