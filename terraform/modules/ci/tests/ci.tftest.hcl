# The CI module without AWS: the trust policies (audience and subject of every role) and every validation.
mock_provider "aws" {
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
}

variables {
  project    = "mlops"
  account_id = "123456789012"
  region     = "eu-west-1"
  gitlab = {
    url             = "https://gitlab.example.com"
    project_path    = "platform/ml-ops"
    protected_tags  = ["v*"]
    audience_prefix = "mlops"
  }
  platform = {
    artifacts_bucket_arn = "arn:aws:s3:::mlops-artifacts-123456789012-eu-west-1"
    kms_key_arn          = "arn:aws:kms:eu-west-1:123456789012:key/platform"
    ecr_repository_arns  = ["arn:aws:ecr:eu-west-1:123456789012:repository/mlops/churn"]
    trigger_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlops-trigger"
    ledger_table_arn     = "arn:aws:dynamodb:eu-west-1:123456789012:table/mlops-ledger"
  }
  tenants = {
    acme    = { models = ["churn"], kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/acme" }
    acme-eu = { models = ["churn"], kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/acme-eu" }
  }
}

run "every_role_pins_its_audience_and_subject" {
  command = plan

  assert {
    condition     = toset(keys(aws_iam_role.ci)) == toset(["build", "train", "infra"]) && toset(keys(aws_iam_role.deploy)) == toset(["staging-acme", "staging-acme-eu", "production-acme", "production-acme-eu"])
    error_message = "One role per purpose, and a deploy role per environment and tenant."
  }
  assert {
    condition = alltrue([for purpose, role in aws_iam_role.ci :
      jsondecode(role.assume_role_policy).Statement[0].Condition.StringEquals["gitlab.example.com:aud"] == "mlops-${purpose}"
    ])
    error_message = "Each role accepts only its own audience."
  }
  assert {
    condition = alltrue([for purpose, role in aws_iam_role.ci :
      length(jsondecode(role.assume_role_policy).Statement) == 1 &&
      jsondecode(role.assume_role_policy).Statement[0].Principal.Federated == "arn:aws:iam::123456789012:oidc-provider/gitlab.example.com" &&
      jsondecode(role.assume_role_policy).Statement[0].Action == "sts:AssumeRoleWithWebIdentity"
    ])
    error_message = "Each role trusts only GitLab's OIDC provider, with web identity."
  }
  assert {
    condition     = jsondecode(aws_iam_role.ci["infra"].assume_role_policy).Statement[0].Condition.StringLike["gitlab.example.com:sub"] == ["project_path:platform/ml-ops:ref_type:branch:ref:main"]
    error_message = "Infra accepts the default branch of ml-ops only."
  }
  assert {
    condition = alltrue([for key, role in aws_iam_role.deploy :
      jsondecode(role.assume_role_policy).Statement[0].Condition.StringEquals == {
        "gitlab.example.com:aud" = "mlops-deploy"
        "gitlab.example.com:sub" = "project_path:platform/ml-ops:ref_type:branch:ref:main:environment_protected:true:deployment_tier:${startswith(key, "staging-") ? "staging" : "production"}"
      }
    ])
    error_message = "A deploy role accepts the default branch, a protected environment and its own tier only."
  }
  assert {
    condition     = aws_iam_role.deploy["production-acme"].name == "mlops-deploy-production-acme"
    error_message = "Deploy role names follow mlops.naming.Names.deploy_role."
  }
  assert {
    condition = (toset(flatten([for s in jsondecode(aws_iam_role_policy.deploy["staging-acme"].policy).Statement : s.Resource if s.Sid == "Endpoints"])) == toset([
      "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/mlops-staging-acme-churn",
      "arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/mlops-staging-acme-churn-*",
    ]))
    error_message = "A staging deploy role names the tenant's staging endpoints only."
  }
  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.deploy["staging-acme"].policy).Statement : s.Resource if s.Sid == "PassInferenceRole"][0] == "arn:aws:iam::123456789012:role/mlops-inference-acme"
    error_message = "A deploy role passes the tenant's inference role only."
  }
  assert {
    condition     = toset([for s in jsondecode(aws_iam_role_policy.train.policy).Statement : s.Resource if s.Sid == "PassPipelineRoles"][0]) == toset(["arn:aws:iam::123456789012:role/mlops-pipeline-acme", "arn:aws:iam::123456789012:role/mlops-pipeline-acme-eu"])
    error_message = "Train passes the tenants' pipeline roles only."
  }
  assert {
    condition = alltrue([for purpose in ["build", "train"] :
      jsondecode(aws_iam_role.ci[purpose].assume_role_policy).Statement[0].Condition.StringLike["gitlab.example.com:sub"] == [
        "project_path:platform/ml-ops:ref_type:branch:ref:main",
        "project_path:platform/ml-ops:ref_type:tag:ref:v*",
      ]
    ])
    error_message = "Build and train accept the protected refs of ml-ops only."
  }
  assert {
    condition     = toset(aws_iam_openid_connect_provider.gitlab[0].client_id_list) == toset(["mlops-build", "mlops-train", "mlops-deploy", "mlops-infra"])
    error_message = "The provider lists the four audiences."
  }
  assert {
    condition     = aws_iam_role.ci["infra"].name == "mlops-ci-infra"
    error_message = "Role names follow mlops.naming.Names.ci_role."
  }
}

run "existing_provider_is_not_created" {
  command = plan
  variables {
    gitlab = { project_path = "platform/ml-ops", create_provider = false }
  }
  assert {
    condition     = length(aws_iam_openid_connect_provider.gitlab) == 0 && output.oidc_provider_arn == "arn:aws:iam::123456789012:oidc-provider/gitlab.com"
    error_message = "With create_provider = false the roles trust the existing provider of the URL."
  }
}

run "rejects_http_url" {
  command = plan
  variables { gitlab = { url = "http://gitlab.example.com", project_path = "platform/ml-ops" } }
  expect_failures = [var.gitlab]
}

run "rejects_wildcard_project_path" {
  command = plan
  variables { gitlab = { project_path = "platform/*" } }
  expect_failures = [var.gitlab]
}

run "rejects_wildcard_default_branch" {
  command = plan
  variables { gitlab = { project_path = "platform/ml-ops", default_branch = "*" } }
  expect_failures = [var.gitlab]
}

run "rejects_wildcard_protected_branch" {
  command = plan
  variables { gitlab = { project_path = "platform/ml-ops", protected_branches = ["release/*"] } }
  expect_failures = [var.gitlab]
}

run "rejects_no_protected_branch" {
  command = plan
  variables { gitlab = { project_path = "platform/ml-ops", protected_branches = [] } }
  expect_failures = [var.gitlab]
}

run "rejects_a_bare_tag_wildcard" {
  command = plan
  variables { gitlab = { project_path = "platform/ml-ops", protected_tags = ["*"] } }
  expect_failures = [var.gitlab]
}

run "rejects_a_bad_audience_prefix" {
  command = plan
  variables { gitlab = { project_path = "platform/ml-ops", audience_prefix = "ML Ops" } }
  expect_failures = [var.gitlab]
}

run "rejects_a_bad_project" {
  command = plan
  variables { project = "ML" }
  expect_failures = [var.project]
}

run "rejects_a_bad_account_id" {
  command = plan
  variables { account_id = "abc" }
  expect_failures = [var.account_id]
}

run "rejects_a_bad_region" {
  command = plan
  variables { region = "eu_west_1" }
  expect_failures = [var.region]
}

run "rejects_a_bad_infra_policy_arn" {
  command = plan
  variables { infra_policy_arns = ["AdministratorAccess"] }
  expect_failures = [var.infra_policy_arns]
}

run "rejects_a_bad_session_duration" {
  command = plan
  variables { max_session_duration = 60 }
  expect_failures = [var.max_session_duration]
}
