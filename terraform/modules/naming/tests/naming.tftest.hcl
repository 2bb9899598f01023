# The naming module: a few names (the full comparison with mlops.naming runs in tests/terraform) and every
# validation.
variables {
  project    = "mlops"
  account_id = "123456789012"
  region     = "eu-west-1"
  models     = ["churn"]
  tiers      = ["gold"]
  tenants    = { acme = { models = ["churn"] } }
}

run "names" {
  command = plan

  assert {
    condition     = output.platform.artifacts_bucket == "mlops-artifacts-123456789012-eu-west-1" && output.tenants["acme"].model_package_groups["churn"] == "mlops-acme-churn"
    error_message = "Names follow mlops.naming."
  }
  assert {
    condition     = output.ci_roles == { build = "mlops-ci-build", train = "mlops-ci-train", infra = "mlops-ci-infra" }
    error_message = "CI role names follow Names.ci_role."
  }
  assert {
    condition = (output.tenants["acme"].pipeline_role == "mlops-pipeline-acme" && output.tenants["acme"].inference_role == "mlops-inference-acme"
      && output.tenants["acme"].deploy_roles == { staging = "mlops-deploy-staging-acme", production = "mlops-deploy-production-acme" }
    && output.tenants["acme"].production_endpoints["churn"] == "mlops-production-acme-churn")
    error_message = "Tenant roles and per-environment endpoints follow mlops.naming."
  }
}

run "rejects_a_bad_project" {
  command = plan
  variables { project = "a-very-long-project-name-indeed" }
  expect_failures = [var.project]
}

run "rejects_a_bad_account_id" {
  command = plan
  variables { account_id = "x23456789012" }
  expect_failures = [var.account_id]
}

run "rejects_a_bad_region" {
  command = plan
  variables { region = "EU-WEST-1" }
  expect_failures = [var.region]
}

run "tenants_whose_ids_only_share_a_prefix_share_no_name" {
  command = plan
  variables {
    models  = ["churn", "house-prices"]
    tenants = { acme = { models = ["churn", "house-prices"] }, acme-house = { models = ["churn"] } }
  }

  assert {
    condition     = output.shared_names == {} && output.tenants["acme-house"].pipelines["churn"] == "mlops-acme-house-churn"
    error_message = "Tenants whose ids share a prefix keep names of their own."
  }
}

# acme + house-prices and acme-house + prices both get mlops-acme-house-prices (pipeline, group, endpoint).
run "finds_the_names_two_tenants_would_share" {
  command = plan
  variables {
    models  = ["churn", "house-prices", "prices"]
    tenants = { acme = { models = ["churn", "house-prices"] }, acme-house = { models = ["prices"] }, globex = { models = ["churn"] } }
  }

  assert {
    condition = output.shared_names == {
      for kind in ["model_package_groups", "pipelines", "staging_endpoints", "production_endpoints"] :
      "${kind} ${startswith(kind, "staging") ? "mlops-staging-" : startswith(kind, "production") ? "mlops-production-" : "mlops-"}acme-house-prices" => tolist(["acme", "acme-house"])
    }
    error_message = "The pipeline, model package group and endpoints acme + house-prices and acme-house + prices share are found, and nothing else."
  }
}
