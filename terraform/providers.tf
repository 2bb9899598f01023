# One provider for the real account and the local AWS. With `aws_endpoint_url` set (by `mlops local up`
# and the tests) the provider uses fake credentials and skips the checks that only a real account can
# answer. The endpoint itself reaches the provider as `AWS_ENDPOINT_URL` in Terraform's environment (set
# from this variable by mlops.terraform; the AWS SDK sends every service there), not as an `endpoints`
# block: validating a non-empty `endpoints` block costs provider 5.100 ~3 s of CPU in every plan and apply.

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
}
