# -- identity of the platform ------------------------------------------------------------------------
variable "project" {
  description = "Project name from platform.yaml: the prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.project)) && length(var.project) <= 20
    error_message = "The project must be lowercase words joined by single hyphens, at most 20 characters."
  }
}

variable "account_id" {
  description = "AWS account id the roles live in (12 digits)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The account id must be 12 digits."
  }
}

variable "region" {
  description = "AWS region of the platform (the roles' permissions name its resources)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
}

# -- GitLab -----------------------------------------------------------------------------------------
variable "gitlab" {
  description = <<-EOT
    The GitLab instance and the ml-ops project whose CI jobs may assume the roles.
    `url`: the instance (its OIDC issuer), https, no trailing slash. `project_path`: group/.../project of
    ml-ops, no wildcard. `default_branch`: the only ref deploy and infra jobs may run from.
    `protected_branches` / `protected_tags`: the refs build and train jobs may run from; keep them equal to
    the project's protected refs (tags may be patterns such as `v*`, never a bare `*`).
    `audience_prefix`: the `oidc-audience` input of ci-templates (audiences are `<prefix>-<purpose>`).
    `create_provider`: false when the account already has an OIDC provider for this URL.
  EOT
  type = object({
    url                = optional(string, "https://gitlab.com")
    project_path       = string
    default_branch     = optional(string, "main")
    protected_branches = optional(list(string), ["main"])
    protected_tags     = optional(list(string), [])
    audience_prefix    = optional(string, "mlops")
    create_provider    = optional(bool, true)
  })

  validation {
    condition     = can(regex("^https://[a-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._-]+)*$", var.gitlab.url))
    error_message = "gitlab.url must be an https URL without a trailing slash, e.g. https://gitlab.com."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$", var.gitlab.project_path))
    error_message = "gitlab.project_path must be group[/subgroup...]/project, without wildcards."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9_./-]+$", var.gitlab.default_branch))
    error_message = "gitlab.default_branch must be one branch name, without wildcards."
  }

  validation {
    condition     = length(var.gitlab.protected_branches) > 0 && alltrue([for b in var.gitlab.protected_branches : can(regex("^[A-Za-z0-9_./-]+$", b))])
    error_message = "gitlab.protected_branches must list at least one branch name, without wildcards."
  }

  validation {
    condition     = alltrue([for t in var.gitlab.protected_tags : can(regex("^[A-Za-z0-9_./-]+\\*?$", t)) && t != "*"])
    error_message = "gitlab.protected_tags are tag names or prefixes ending in one `*` (e.g. v*), never a bare `*`."
  }

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,40}$", var.gitlab.audience_prefix))
    error_message = "gitlab.audience_prefix must be lowercase letters, digits and hyphens (e.g. mlops)."
  }
}

# -- what the roles may touch -------------------------------------------------------------------------
variable "platform" {
  description = "ARNs of the platform resources the CI roles work on (outputs of the platform module)."
  type = object({
    artifacts_bucket_arn = string
    kms_key_arn          = string
    ecr_repository_arns  = list(string)
    trigger_function_arn = string
    ledger_table_arn     = string
  })
}

variable "tenants" {
  description = "The enabled tenants by id: the models they train and their KMS key (each gets a pipeline role passed by train, and a deploy role per environment)."
  type = map(object({
    models      = list(string)
    kms_key_arn = string
  }))
  default = {}

  validation {
    condition     = alltrue([for id, tenant in var.tenants : can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", id)) && can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", tenant.kms_key_arn))])
    error_message = "Tenant ids are lowercase words joined by hyphens and each kms_key_arn is a KMS key ARN."
  }
}

variable "infra_policy_arns" {
  description = "Managed policies attached to the infra role (it applies this Terraform root). Empty: the role exists with no permissions until the account's operators choose them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.infra_policy_arns : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/", arn))])
    error_message = "infra_policy_arns must be IAM policy ARNs (arn:aws:iam::<account or aws>:policy/...)."
  }
}

variable "max_session_duration" {
  description = "Longest CI session in seconds (3600-43200); a job re-assumes its role when the session ends."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "tags" {
  description = "Tags on every resource of the module."
  type        = map(string)
  default     = {}
}
