output "oidc_provider_arn" {
  description = "ARN of the GitLab OIDC provider (created here, or the existing one when `create_provider` is false)."
  value       = local.provider_arn
}

output "role_arns" {
  description = "ARN of each CI role by purpose: set them as MLOPS_AWS_ROLE_ARN_BUILD, _TRAIN, _DEPLOY and _INFRA in GitLab."
  value       = { for purpose, role in aws_iam_role.ci : purpose => role.arn }
}

output "audiences" {
  description = "The `aud` each role accepts, by purpose (`<audience_prefix>-<purpose>`)."
  value       = { for purpose in keys(local.subs) : purpose => "${var.gitlab.audience_prefix}-${purpose}" }
}

output "subjects" {
  description = "The `sub` values each role accepts, by purpose."
  value       = local.subs
}
