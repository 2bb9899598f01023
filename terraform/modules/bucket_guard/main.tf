# Creates nothing: the bucket policy of every bucket of the platform (the artifacts bucket, each tenant's
# bucket). TLS only, and an upload names no other encryption than the bucket's key. An upload without
# encryption headers gets the bucket's default encryption (that key), so SDK uploads need no headers; one
# that asks for SSE-S3, another KMS key, or aws:kms without a key id (S3 would use the aws/s3 key) is refused.

locals {
  objects = "${var.bucket_arn}/*"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "TlsOnly"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [var.bucket_arn, local.objects]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "OnlyKmsEncryption"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:PutObject"
        Resource  = local.objects
        Condition = {
          Null            = { "s3:x-amz-server-side-encryption" = "false" }
          StringNotEquals = { "s3:x-amz-server-side-encryption" = "aws:kms" }
        }
      },
      {
        Sid       = var.key_statement_sid
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:PutObject"
        Resource  = local.objects
        Condition = {
          Null                    = { "s3:x-amz-server-side-encryption" = "false" }
          StringNotEqualsIfExists = { "s3:x-amz-server-side-encryption-aws-kms-key-id" = var.kms_key_arn }
        }
      },
    ]
  })
}
