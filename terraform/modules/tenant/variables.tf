variable "project" {
  description = "Project name from platform.yaml: the prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.project)) && length(var.project) <= 20
    error_message = "The project must be lowercase words joined by single hyphens, at most 20 characters."
  }
}

variable "account_id" {
  description = "AWS account id the tenant's resources live in (12 digits)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The account id must be 12 digits."
  }
}

variable "region" {
  description = "AWS region the tenant's resources live in."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
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

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.tier))
    error_message = "The tier must be lowercase words joined by single hyphens (a key of platform.yaml tiers)."
  }
}

variable "models" {
  description = "Models the tenant trains: one model package group each."
  type        = list(string)

  validation {
    condition     = length(var.models) > 0 && alltrue([for m in var.models : can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", m))])
    error_message = "A tenant trains at least one model; model names are lowercase words joined by single hyphens."
  }
}

variable "enabled" {
  description = "The registry's `enabled`. false: the tenant's role, policy and upload rule go; its bucket, KMS key and model package groups stay."
  type        = bool
  default     = true
}

variable "tags" {
  description = "The tenant's own cost-allocation tags from its registry file (merged over the platform's)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:") && !startswith(lower(k), "mlops:")])
    error_message = "Tag keys are at most 128 characters and may not start with aws: or mlops: (the platform's own), values at most 256 characters."
  }
}

variable "uploads_queue_arn" {
  description = "ARN of the platform queue that receives the tenant's data-upload events."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.uploads_queue_arn))
    error_message = "uploads_queue_arn must be an SQS queue ARN."
  }
}

variable "artifacts_bucket_arn" {
  description = "ARN of the platform artifacts bucket (the tenant role reads pipeline code from it)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.artifacts_bucket_arn))
    error_message = "artifacts_bucket_arn must be an S3 bucket ARN (arn:aws:s3:::name)."
  }
}

variable "ecr_repository_arns" {
  description = "ARNs of the platform's ECR repositories of the tenant's models (the tenant role pulls images)."
  type        = list(string)

  validation {
    condition     = alltrue([for arn in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", arn))])
    error_message = "ecr_repository_arns must be ECR repository ARNs."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the tenant bucket with its objects (local and test environments)."
  type        = bool
  default     = false
}

variable "platform_kms_key_arn" {
  description = "ARN of the platform KMS key: the tenant role decrypts pipeline code in the artifacts bucket with it."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.platform_kms_key_arn))
    error_message = "platform_kms_key_arn must be a KMS key ARN."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted object version of the tenant bucket is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 3650
    error_message = "noncurrent_version_days must be between 1 and 3650."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Days a scheduled deletion of the tenant's KMS key waits (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "key_user_arns" {
  description = "Principals besides the tenant's roles that may use the tenant key through S3 (e.g. the tenant's data uploader); role or user ARNs, wildcards allowed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.key_user_arns : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$", arn))])
    error_message = "key_user_arns must be IAM or STS principal ARNs."
  }
}

variable "bucket_policy_enabled" {
  description = "Attach the bucket policy (TLS only, KMS key only). false only on the local AWS: moto evaluates a bucket policy's conditions without the request's context, so every conditional Deny there denies everything."
  type        = bool
  default     = true
}
