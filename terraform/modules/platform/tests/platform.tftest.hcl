# The platform module without AWS: hardening settings and every validation. The Lambda packages are empty
# placeholder files (the mock provider never reads them; only their hash is taken).
mock_provider "aws" {
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/mock" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
}

variables {
  project            = "mlops"
  account_id         = "123456789012"
  region             = "eu-west-1"
  models             = ["churn", "house-prices"]
  tiers              = ["bronze", "gold"]
  lambda_package_dir = "tests/packages"
}

run "everything_at_rest_is_encrypted_and_kept" {
  command = plan

  assert {
    condition     = alltrue([for q in values(aws_sqs_queue.queue) : q.kms_master_key_id == "alias/mlops-platform"]) && alltrue([for q in values(aws_sqs_queue.dlq) : q.kms_master_key_id == "alias/mlops-platform"])
    error_message = "Every queue and DLQ is encrypted with the platform key."
  }
  assert {
    condition     = toset(keys(aws_sqs_queue.dlq)) == toset(keys(aws_sqs_queue.queue)) && length(aws_sqs_queue.queue) == 4
    error_message = "Every queue (tiers, uploads, status) has a DLQ."
  }
  assert {
    condition     = aws_dynamodb_table.ledger.point_in_time_recovery[0].enabled && aws_dynamodb_table.slots.point_in_time_recovery[0].enabled
    error_message = "Both tables have point-in-time recovery."
  }
  assert {
    condition     = alltrue([for r in values(aws_ecr_repository.model) : r.image_tag_mutability == "IMMUTABLE" && r.image_scanning_configuration[0].scan_on_push && r.encryption_configuration[0].encryption_type == "KMS"])
    error_message = "Repositories are immutable, scanned on push and KMS-encrypted."
  }
  assert {
    condition     = alltrue([for g in values(aws_cloudwatch_log_group.function) : g.retention_in_days == 365])
    error_message = "Log groups keep a year of logs."
  }
  assert {
    condition     = aws_lambda_function.function["dispatcher"].reserved_concurrent_executions == 2 && aws_lambda_function.function["trigger"].tracing_config[0].mode == "Active"
    error_message = "Functions have reserved concurrency and tracing."
  }
  assert {
    condition     = aws_s3_bucket_public_access_block.artifacts.restrict_public_buckets && aws_s3_bucket_versioning.artifacts.versioning_configuration[0].status == "Enabled"
    error_message = "The artifacts bucket is versioned and private."
  }
  assert {
    condition     = aws_kms_key.this.enable_key_rotation && aws_kms_key.this.deletion_window_in_days == 30
    error_message = "The platform key rotates and waits 30 days before deletion."
  }
}

run "rejects_a_bad_project" {
  command = plan
  variables { project = "-mlops" }
  expect_failures = [var.project]
}

run "rejects_a_bad_account_id" {
  command = plan
  variables { account_id = "1234567890123" }
  expect_failures = [var.account_id]
}

run "rejects_a_bad_region" {
  command = plan
  variables { region = "mars" }
  expect_failures = [var.region]
}

run "rejects_a_bad_model" {
  command = plan
  variables { models = ["House_Prices"] }
  expect_failures = [var.models]
}

run "rejects_no_tiers" {
  command = plan
  variables { tiers = [] }
  expect_failures = [var.tiers]
}

run "rejects_an_unknown_runtime" {
  command = plan
  variables { lambda_runtime = "python2.7" }
  expect_failures = [var.lambda_runtime]
}

run "rejects_a_bad_receive_count" {
  command = plan
  variables { max_receive_count = 0 }
  expect_failures = [var.max_receive_count]
}

run "tier_queues_redrive_later_than_event_queues" {
  command = plan

  # the redrive policy names the DLQ's ARN, which a plan does not know otherwise
  override_resource {
    target          = aws_sqs_queue.dlq
    override_during = plan
    values          = { arn = "arn:aws:sqs:eu-west-1:123456789012:mock-dlq" }
  }

  assert {
    condition     = jsondecode(aws_sqs_queue.queue["gold"].redrive_policy).maxReceiveCount == 50 && jsondecode(aws_sqs_queue.queue["status"].redrive_policy).maxReceiveCount == 5
    error_message = "Tier queues redrive after 50 deliveries (a request is received about once, when filed), the event queues after 5."
  }
}

run "rejects_a_tier_queue_receive_count_below_five" {
  command = plan
  variables { tier_queue_max_receive_count = 2 }
  expect_failures = [var.tier_queue_max_receive_count]
}

run "rejects_a_short_log_retention" {
  command = plan
  variables { log_retention_days = 30 }
  expect_failures = [var.log_retention_days]
}

run "rejects_a_bad_version_retention" {
  command = plan
  variables { noncurrent_version_days = 0 }
  expect_failures = [var.noncurrent_version_days]
}

run "rejects_a_bad_key_deletion_window" {
  command = plan
  variables { kms_deletion_window_in_days = 31 }
  expect_failures = [var.kms_deletion_window_in_days]
}

run "rejects_a_bad_reserved_concurrency" {
  command = plan
  variables { reserved_concurrency = { trigger = 0 } }
  expect_failures = [var.reserved_concurrency]
}

run "functions_carry_the_layer_the_registry_and_a_dispatch_schedule" {
  command = plan

  assert {
    condition     = alltrue([for f in values(aws_lambda_function.function) : f.environment[0].variables["MLOPS_ROOT"] == "/var/task/registry"])
    error_message = "Every function reads the tenant registry packaged with its code."
  }
  assert {
    condition     = aws_lambda_layer_version.dependencies.layer_name == "mlops-lambda-deps" && aws_lambda_layer_version.dependencies.compatible_runtimes == toset(["python3.11"])
    error_message = "The dependencies layer is named by the naming module and built for the functions' runtime."
  }
  assert {
    condition     = aws_cloudwatch_event_rule.dispatch_schedule[0].schedule_expression == "rate(1 minute)"
    error_message = "The dispatcher runs every minute on a real account."
  }
  assert {
    condition     = aws_lambda_permission.dispatch_schedule[0].principal == "events.amazonaws.com" && aws_lambda_permission.dispatch_schedule[0].function_name == "mlops-dispatcher"
    error_message = "EventBridge may invoke the dispatcher."
  }
}

run "the_schedule_is_off_where_the_local_runtime_runs_the_dispatcher" {
  command = plan

  variables {
    event_source_mappings_enabled = false
  }

  assert {
    condition     = length(aws_cloudwatch_event_rule.dispatch_schedule) == 0 && length(aws_lambda_permission.dispatch_schedule) == 0
    error_message = "On the local AWS the local runtime runs the dispatcher, not EventBridge."
  }
}

run "rejects_a_layer_built_for_another_runtime" {
  command = plan

  variables {
    lambda_runtime = "python3.12"
  }

  expect_failures = [aws_lambda_layer_version.dependencies]
}
