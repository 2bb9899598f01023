# The bucket policy document: TLS only, KMS only, the bucket's key only; the bucket ARN is validated.
variables {
  bucket_arn        = "arn:aws:s3:::mlops-tenant-acme-123456789012"
  kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  key_statement_sid = "OnlyTheTenantKey"
}

run "policy" {
  command = plan

  assert {
    condition     = [for s in jsondecode(output.policy).Statement : s.Sid] == ["TlsOnly", "OnlyKmsEncryption", "OnlyTheTenantKey"]
    error_message = "Three deny statements, the key statement named as asked."
  }
  assert {
    condition     = alltrue([for s in jsondecode(output.policy).Statement : s.Effect == "Deny" && s.Principal == "*"])
    error_message = "Every statement denies, for everyone."
  }
  assert {
    condition     = jsondecode(output.policy).Statement[0].Condition.Bool["aws:SecureTransport"] == "false"
    error_message = "Requests without TLS are denied."
  }
  assert {
    condition     = jsondecode(output.policy).Statement[2].Condition.StringNotEqualsIfExists["s3:x-amz-server-side-encryption-aws-kms-key-id"] == var.kms_key_arn
    error_message = "An upload may name the bucket's key only."
  }
  assert {
    condition     = jsondecode(output.policy).Statement[1].Resource == "${var.bucket_arn}/*"
    error_message = "The encryption rules apply to the bucket's objects."
  }
}

run "bucket_arn_is_validated" {
  command = plan

  variables {
    bucket_arn = "mlops-tenant-acme-123456789012"
  }

  expect_failures = [var.bucket_arn]
}
