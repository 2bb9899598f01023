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
