variable "platform_file" {
  description = "Path of platform.yaml (project, region, models, tiers). Empty: the repository's own."
  type        = string
  default     = ""
}

variable "tenants_dir" {
  description = "Folder of the tenant registry, one YAML file per tenant. Empty: the repository's tenants/."
  type        = string
  default     = ""
}

variable "lambda_package_dir" {
  description = "Folder holding trigger.zip, dispatcher.zip and status.zip (built by `mlops.packaging`)."
  type        = string
}

variable "aws_endpoint_url" {
  description = "A local AWS endpoint (moto server), e.g. http://127.0.0.1:5000. Empty: the real AWS."
  type        = string
  default     = ""
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets and repositories (local and test environments)."
  type        = bool
  default     = false
}

variable "gitlab" {
  description = "The GitLab instance and ml-ops project trusted by the CI roles (see modules/ci). null: no OIDC provider and no CI roles."
  type = object({
    url                = optional(string, "https://gitlab.com")
    project_path       = string
    default_branch     = optional(string, "main")
    protected_branches = optional(list(string), ["main"])
    protected_tags     = optional(list(string), [])
    audience_prefix    = optional(string, "mlops")
    create_provider    = optional(bool, true)
  })
  default = {
    project_path = "platform/ml-ops"
  }
}

variable "ci_infra_policy_arns" {
  description = "Managed policies for the CI infra role, which applies this root (empty: chosen by the account's operators)."
  type        = list(string)
  default     = []
}
