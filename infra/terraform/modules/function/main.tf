# One Cloud Functions (gen2) function with its own service account and only the access it is
# given here: project roles, mounted secrets, invokers. Resource-level grants on buckets and
# topics stay with the caller, next to the resource they open.

locals {
  public = var.public_invoker ? { public = "allUsers" } : {}
  # An event trigger invokes the function as the function's own service account.
  trigger  = var.event_trigger == null ? {} : { trigger = google_service_account.this.member }
  invokers = merge(var.invoker_members, local.public, local.trigger)

  environment = merge(
    var.environment,
    # functions-framework serves with gunicorn threads = THREADS (default 4 x CPUs); keep it
    # equal to the request concurrency so a long request never starves the others. (An async
    # function, the stream function, is served by a uvicorn worker and takes no threads.)
    { THREADS = tostring(var.concurrency) },
  )
}

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "sketchgen ${var.name} function"
  description  = "Runtime identity of the ${var.name} Cloud Function; holds only the roles it needs."
}

resource "google_project_iam_member" "this" {
  for_each = var.project_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.this.member
}

# Secret Manager checks the runtime identity's access when the revision is deployed, so the
# grant must exist, and be seen, before the function (time_sleep.grants_propagate).
resource "google_secret_manager_secret_iam_member" "this" {
  for_each = var.secret_environment

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.this.member
}

# IAM grants take a minute or two to be seen everywhere, and Cloud Run checks the runtime
# identity's secret access when the revision deploys: a function created right after its grants
# can fail its first apply. So it waits for them; and again whenever a grant is added (the
# triggers), before the revision that needs it.
resource "time_sleep" "grants_propagate" {
  create_duration = var.iam_propagation_wait

  triggers = {
    project_roles = join(",", sort(tolist(var.project_roles)))
    secrets       = join(",", sort([for name, secret in var.secret_environment : "${name}=${secret.secret}"]))
  }

  depends_on = [
    google_project_iam_member.this,
    google_secret_manager_secret_iam_member.this,
  ]
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.this.email
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    available_cpu                    = var.cpu
    available_memory                 = var.memory
    timeout_seconds                  = var.timeout_seconds
    environment_variables            = local.environment

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }

  dynamic "event_trigger" {
    for_each = var.event_trigger == null ? [] : [var.event_trigger]
    content {
      trigger_region        = var.region
      event_type            = event_trigger.value.event_type
      pubsub_topic          = event_trigger.value.pubsub_topic
      retry_policy          = event_trigger.value.retry ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"
      service_account_email = google_service_account.this.email
    }
  }

  depends_on = [time_sleep.grants_propagate]
}

# Gen2 functions are Cloud Run services: invocation is roles/run.invoker on the service.
# allUsers only when public_invoker is set, for endpoints that authenticate every request
# themselves (Firebase ID tokens).
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invokers

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.name # a gen2 function's service has its name
  role     = "roles/run.invoker"
  member   = each.value
}
