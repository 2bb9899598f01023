# One provider for the real account and the local AWS. With `aws_endpoint_url` set (by `mlops local up`
# and the tests) every service the modules use goes to that endpoint with fake credentials, and the checks
# that only a real account can answer are skipped.

locals {
  local_aws = var.aws_endpoint_url != ""
}

provider "aws" {
  region     = local.region
  access_key = local.local_aws ? "testing" : null
  secret_key = local.local_aws ? "testing" : null

  skip_credentials_validation = local.local_aws
  skip_requesting_account_id  = local.local_aws
  skip_metadata_api_check     = local.local_aws
  skip_region_validation      = local.local_aws
  s3_use_path_style           = local.local_aws

  dynamic "endpoints" {
    for_each = local.local_aws ? [var.aws_endpoint_url] : []

    content {
      cloudwatchevents = endpoints.value
      cloudwatchlogs   = endpoints.value
      dynamodb         = endpoints.value
      ecr              = endpoints.value
      iam              = endpoints.value
      lambda           = endpoints.value
      s3               = endpoints.value
      sagemaker        = endpoints.value
      sns              = endpoints.value
      sqs              = endpoints.value
      sts              = endpoints.value
      kms              = endpoints.value
    }
  }
}
