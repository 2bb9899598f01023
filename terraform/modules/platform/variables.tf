variable "project" {
  description = "Project name from platform.yaml: the prefix of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.project)) && length(var.project) <= 20
    error_message = "The project must be lowercase words joined by single hyphens, at most 20 characters."
  }
}

variable "account_id" {
  description = "AWS account id the platform lives in (12 digits)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The account id must be 12 digits."
  }
}

variable "region" {
  description = "AWS region the platform lives in."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must look like eu-west-1."
  }
}

variable "models" {
  description = "Models the platform builds: one ECR repository each."
  type        = list(string)

  validation {
    condition     = alltrue([for m in var.models : can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", m))])
    error_message = "Model names must be lowercase words joined by single hyphens (e.g. house-prices)."
  }
}

variable "tiers" {
  description = "Subscription tier names: one request queue (with its DLQ) each."
  type        = list(string)

  validation {
    condition     = length(var.tiers) > 0 && alltrue([for t in var.tiers : can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", t))])
    error_message = "At least one tier, each lowercase words joined by single hyphens (e.g. gold)."
  }
}

variable "lambda_package_dir" {
  description = "Folder holding trigger.zip, dispatcher.zip and status.zip, built by `mlops.packaging`."
  type        = string
}

variable "lambda_runtime" {
  description = "Python runtime of the Lambda functions."
  type        = string
  default     = "python3.11"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be one of python3.11, python3.12, python3.13."
  }
}

variable "event_source_mappings_enabled" {
  description = "Whether Lambda polls the uploads and status queues. Off on the local AWS, where the local runtime polls them (moto would otherwise consume the messages and fail to run the code)."
  type        = bool
  default     = true
}

variable "max_receive_count" {
  description = "Deliveries of a message before SQS moves it to the queue's dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "tier_queue_max_receive_count" {
  description = "Deliveries of a tier queue's message before SQS moves it to the DLQ. A request is received about once, when a dispatcher files it in the fair backlog; the margin covers dispatcher crashes and filing retries."
  type        = number
  default     = 50

  validation {
    condition     = var.tier_queue_max_receive_count >= 5 && var.tier_queue_max_receive_count <= 1000
    error_message = "tier_queue_max_receive_count must be between 5 and 1000."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets and repositories (local and test environments)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags on every platform resource."
  type        = map(string)
  default     = {}
}

# -- hardening ----------------------------------------------------------------------------------------
variable "log_retention_days" {
  description = "Days the Lambda functions' logs are kept (a value CloudWatch Logs accepts, at least 365)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted object version of the artifacts bucket is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 3650
    error_message = "noncurrent_version_days must be between 1 and 3650."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Days a scheduled deletion of the platform KMS key waits (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of each function (trigger, dispatcher, status): caps how hard a burst of events can hit SageMaker and DynamoDB. -1 leaves a function unreserved."
  type = object({
    trigger    = optional(number, 10)
    dispatcher = optional(number, 2)
    status     = optional(number, 5)
  })
  default = {}

  validation {
    condition     = alltrue([for n in values(var.reserved_concurrency) : n == -1 || (n >= 1 && n <= 100)])
    error_message = "reserved_concurrency values must be -1 (unreserved) or between 1 and 100."
  }
}

variable "bucket_policy_enabled" {
  description = "Attach the bucket policy (TLS only, KMS key only). false only on the local AWS: moto evaluates a bucket policy's conditions without the request's context, so every conditional Deny there denies everything."
  type        = bool
  default     = true
}
