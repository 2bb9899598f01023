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
    condition     = output.ci_roles == { build = "mlops-ci-build", train = "mlops-ci-train", deploy = "mlops-ci-deploy", infra = "mlops-ci-infra" }
    error_message = "CI role names follow Names.ci_role."
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
