variable "bucket_arn" {
  description = "ARN of the bucket the policy guards (arn:aws:s3:::<name>)."
  type        = string

  validation {
    condition     = startswith(var.bucket_arn, "arn:aws:s3:::")
    error_message = "bucket_arn must be a bucket ARN (arn:aws:s3:::<name>)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the bucket's KMS key: the only key an upload may name."
  type        = string
}

variable "key_statement_sid" {
  description = "Sid of the statement that refuses uploads naming another key (e.g. OnlyTheTenantKey)."
  type        = string
  default     = "OnlyTheBucketKey"
}
