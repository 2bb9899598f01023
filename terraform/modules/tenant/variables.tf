variable "project" {
  description = "Project name from platform.yaml: the prefix of every resource name."
  type        = string
}

variable "account_id" {
  description = "AWS account id the tenant's resources live in (12 digits)."
  type        = string
}

variable "region" {
  description = "AWS region the tenant's resources live in."
  type        = string
}

variable "tenant_id" {
  description = "The tenant's id from its registry file (tenants/<id>.yaml)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.tenant_id)) && length(var.tenant_id) <= 24
    error_message = "A tenant id is lowercase words joined by single hyphens, at most 24 characters."
  }
}

variable "tier" {
  description = "The tenant's subscription tier (a key of platform.yaml `tiers`)."
  type        = string
}

variable "models" {
  description = "Models the tenant trains: one model package group each."
  type        = list(string)
}

variable "tags" {
  description = "The tenant's own cost-allocation tags from its registry file (merged over the platform's)."
  type        = map(string)
  default     = {}
}

variable "uploads_queue_arn" {
  description = "ARN of the platform queue that receives the tenant's data-upload events."
  type        = string
}

variable "artifacts_bucket_arn" {
  description = "ARN of the platform artifacts bucket (the tenant role reads pipeline code from it)."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ARNs of the platform's ECR repositories of the tenant's models (the tenant role pulls images)."
  type        = list(string)
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the tenant bucket with its objects (local and test environments)."
  type        = bool
  default     = false
}
