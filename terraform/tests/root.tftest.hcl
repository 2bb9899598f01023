# The root without AWS: the registry (tests/registry) is read as in a real plan, and a plan is refused when
# two tenants would get the same resource names. `mlops infra plan|apply` refuses such a registry before
# Terraform runs; this is the same rule in Terraform, for a plan made without mlops.
mock_provider "aws" {
  mock_resource "aws_iam_policy" {
    defaults = { arn = "arn:aws:iam::123456789012:policy/mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/mock" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  override_data {
    target = data.aws_caller_identity.current
    values = { account_id = "123456789012" }
  }
}

variables {
  platform_file      = "tests/registry/platform.yaml"
  tenants_dir        = "tests/registry/tenants"
  lambda_package_dir = "modules/platform/tests/packages"
}

run "tenants_whose_ids_only_share_a_prefix_plan" {
  command = plan

  assert {
    condition     = output.names.tenants["acme-house"].pipelines["churn"] == "mlops-acme-house-churn" && output.names.tenants["acme"].pipelines["house-prices"] == "mlops-acme-house-prices"
    error_message = "Each tenant of the registry gets its own names."
  }
}

run "refuses_tenants_that_would_share_resource_names" {
  command = plan
  variables { tenants_dir = "tests/registry/colliding" }
  expect_failures = [output.names]
}
