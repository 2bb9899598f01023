output "oidc_provider_arn" {
  description = "ARN of the GitLab OIDC provider (created here, or the existing one when `create_provider` is false)."
  value       = local.provider_arn
}

output "role_arns" {
  description = "ARN of each CI role by purpose: set them as MLOPS_AWS_ROLE_ARN_BUILD, _TRAIN and _INFRA in GitLab."
  value       = { for purpose, role in aws_iam_role.ci : purpose => role.arn }
}

output "deploy_role_arns" {
  description = "ARN of each deploy role by environment and tenant (`<environment>-<tenant>`); the deploy jobs derive it from MLOPS_AWS_ACCOUNT_ID."
  value       = { for key, role in aws_iam_role.deploy : key => role.arn }
}

output "audiences" {
  description = "The `aud` each role accepts, by purpose (`<audience_prefix>-<purpose>`)."
  value       = merge({ for purpose in keys(local.subs) : purpose => "${var.gitlab.audience_prefix}-${purpose}" }, { deploy = local.deploy_audience })
}

output "subjects" {
  description = "The `sub` values each role accepts, by purpose (deploy: by environment, with the project's sub claim components extended, docs/security.md)."
  value       = merge(local.subs, { deploy = local.deploy_sub })
}

output "deploy_role_prefix" {
  description = "Set as MLOPS_AWS_DEPLOY_ROLE_PREFIX in GitLab: the deploy jobs append <environment>-<tenant>."
  value       = "arn:aws:iam::${var.account_id}:role/${var.project}-deploy-"
}
