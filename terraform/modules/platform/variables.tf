variable "project" {
  description = "Project name from platform.yaml: the prefix of every resource name."
  type        = string
}

variable "account_id" {
  description = "AWS account id the platform lives in (12 digits)."
  type        = string
}

variable "region" {
  description = "AWS region the platform lives in."
  type        = string
}

variable "models" {
  description = "Models the platform builds: one ECR repository each."
  type        = list(string)
}

variable "tiers" {
  description = "Subscription tier names: one request queue (with its DLQ) each."
  type        = list(string)
}

variable "lambda_package_dir" {
  description = "Folder holding trigger.zip, dispatcher.zip and status.zip, built by `mlops.packaging`."
  type        = string
}

variable "lambda_runtime" {
  description = "Python runtime of the Lambda functions."
  type        = string
  default     = "python3.11"
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
