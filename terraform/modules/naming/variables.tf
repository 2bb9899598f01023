variable "project" {
  description = "Project name from platform.yaml: the prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.project)) && length(var.project) <= 20
    error_message = "The project must be lowercase words joined by single hyphens, at most 20 characters."
  }
}

variable "account_id" {
  description = "AWS account id (12 digits): part of the globally unique S3 bucket names."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The account id must be 12 digits."
  }
}

variable "region" {
  description = "AWS region, e.g. eu-west-1: part of the artifacts bucket name."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
}

variable "models" {
  description = "Models the platform builds (platform.yaml `models`)."
  type        = list(string)
  default     = []
}

variable "tiers" {
  description = "Subscription tier names (platform.yaml `tiers` keys)."
  type        = list(string)
  default     = []
}

variable "tenants" {
  description = "Tenants by id, each with the models it trains."
  type = map(object({
    models = list(string)
  }))
  default = {}
}
