output "policy" {
  description = "The bucket policy document (JSON) for aws_s3_bucket_policy."
  value       = local.policy
}
