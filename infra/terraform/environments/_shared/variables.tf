# The variables of both environments, declared once: environments/dev and environments/prod
# link this file (scripts/check_terraform.sh checks the links). What differs is each
# environment's defaults, in its defaults_override.tf (Terraform merges an *_override.tf file's
# `default` into the declaration here), and its terraform.tfvars.

variable "environment" {
  description = "Environment name, used in labels."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project id (also the Firebase project)."
  type        = string
}

variable "region" {
  description = "Region for functions, buckets, Pub/Sub push and Cloud Scheduler."
  type        = string
  default     = "us-central1"
}

variable "functions_manifest" {
  description = "manifest.json written by `make build`; zip paths in it are relative to it."
  type        = string
  default     = "../../../../build/functions/manifest.json"
}

variable "runtime" {
  description = "Cloud Functions Python runtime."
  type        = string
  default     = "python311"
}

variable "deletion_protection" {
  description = "Protect Firestore and buckets from terraform destroy (and keep soft-deleted objects)."
  type        = bool
}

variable "firestore_database" {
  description = "Firestore database id; \"(default)\" is what mobile SDKs use unless told otherwise."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Firestore location: a region (us-central1) or multi-region (nam5, eur3). Cannot change later."
  type        = string
  default     = "us-central1"
}

variable "firestore_pitr" {
  description = "Firestore point-in-time recovery."
  type        = bool
}

variable "output_retention_days" {
  description = "Days before sketches under jobs/ are deleted from the bucket; job documents expire (TTL) with them."
  type        = number

  validation {
    condition     = var.output_retention_days >= 1
    error_message = "output_retention_days must be at least 1."
  }
}

variable "cors_origins" {
  description = "Web app origins allowed to call the API from a browser (prod: explicit https:// origins, no default)."
  type        = list(string)

  # Refers to var.environment: a cross-variable validation (Terraform >= 1.9, versions.tf).
  validation {
    condition = var.environment != "prod" || (
      length(var.cors_origins) > 0 &&
      alltrue([for o in var.cors_origins : can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", o))])
    )
    error_message = "prod CORS origins must be explicit https:// origins (no *, no paths, no http)."
  }
}

variable "firebase_web_api_key" {
  description = "Firebase web API key (public; from the Firebase console). Empty to leave it out."
  type        = string
  default     = ""
}

variable "log_level" {
  description = "SKETCHGEN_LOG_LEVEL for all functions."
  type        = string
}

variable "gemini_model" {
  description = "Gemini image model (GEMINI_MODEL)."
  type        = string
  default     = "gemini-2.5-flash-image"
}

variable "gemini_rpm" {
  description = "Requests per minute the Gemini quota allows this deployment (the project's tier limit for the model, minus other users of the key)."
  type        = number
}

variable "model_latency_s" {
  description = "Typical seconds for one image call; with gemini_rpm it sizes the worker (see main.tf)."
  type        = number
  default     = 15
}

variable "model_timeout_s" {
  description = "Timeout of one model call (SKETCHGEN_MODEL_TIMEOUT_S); the worker timeout and ack deadline follow from it."
  type        = number
  default     = 120

  # The upper bound follows from Pub/Sub's ack deadline: main.tf, local.model_timeout_max.
  validation {
    condition     = var.model_timeout_s >= 10
    error_message = "model_timeout_s must be at least 10 s."
  }
}

variable "worker_concurrency" {
  description = "Deliveries one worker instance holds at once (drawing, or waiting for a model slot)."
  type        = number
  default     = 8
}

variable "max_delivery_attempts" {
  description = "Draws the worker makes of one sketch before it fails it (SKETCHGEN_MAX_DELIVERIES); the subscription allows 4x as many pushes before the dead-letter topic, for pushes Cloud Run refused (main.tf)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5-100 delivery attempts."
  }
}

variable "dead_letter_retention" {
  description = "How long dead letters are kept for inspection (max 31 days)."
  type        = string
}

variable "generate_min_instances" {
  description = "Warm instances of the API."
  type        = number
}

variable "generate_max_instances" {
  description = "Upper bound on API instances."
  type        = number
}

variable "stream_max_instances" {
  description = "Upper bound on SSE instances (each holds up to 400 streams)."
  type        = number
}

variable "regenerate_styles" {
  description = "Styles whose saved jobs are re-run on the schedule (one Cloud Scheduler job each); empty = no scheduled regeneration."
  type        = list(string)
  default     = []
}

variable "maintain_schedule" {
  description = "Cron schedule of the upkeep run (collecting ended Gemini batches)."
  type        = string
  # Off the hour, so it never fires with the nightly regeneration on the one regenerate instance.
  default = "5-55/10 * * * *"
}

variable "regenerate_schedule" {
  description = "Cron schedule of the regeneration."
  type        = string
  default     = "0 3 * * *"
}

variable "regenerate_time_zone" {
  description = "Time zone of the schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "regenerate_limit" {
  description = "Jobs re-run per scheduled run."
  type        = number
  default     = 100
}

variable "regenerate_batch" {
  description = "Send scheduled regeneration through the Gemini Batch API (half price, slower)."
  type        = bool
  default     = true
}

variable "source_versions_kept" {
  description = "Earlier source zips kept per function to roll back to (noncurrent versions)."
  type        = number
  default     = 10
}

# --- spend control (docs/decisions/0012) ---------------------------------------------------------

variable "user_daily_images" {
  description = "Images one user may reserve per UTC day (SKETCHGEN_USER_DAILY_IMAGES); an account document may override it."
  type        = number
  default     = 200
}

variable "user_active_jobs" {
  description = "Jobs one user may have queued or running at once (SKETCHGEN_USER_ACTIVE_JOBS)."
  type        = number
  default     = 3
}

variable "user_streams" {
  description = "Event streams one user may hold open per stream instance (SKETCHGEN_USER_STREAMS)."
  type        = number
  default     = 5
}

variable "deployment_daily_usd" {
  description = "The deployment's spend ceiling in USD a UTC day, across all users (SKETCHGEN_DEPLOYMENT_DAILY_USD; docs/decisions/0021): refused past it, alerted at spend_alert_fraction of it; null: none."
  type        = number
  default     = 5

  validation {
    condition     = var.deployment_daily_usd == null ? true : var.deployment_daily_usd > 0
    error_message = "deployment_daily_usd must be positive (or null for no ceiling)."
  }
}

variable "require_verified_email" {
  description = "Sign-in only for Firebase users whose email is verified (SKETCHGEN_REQUIRE_VERIFIED_EMAIL)."
  type        = bool
  default     = false
}

variable "app_check" {
  description = "Require a Firebase App Check token (X-Firebase-AppCheck) on every authenticated request (SKETCHGEN_APP_CHECK)."
  type        = bool
  default     = false
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX). When set, a Cloud Billing budget with alert thresholds watches this project; empty: no budget."
  type        = string
  default     = ""
}

variable "budget_amount_usd" {
  description = "The project's monthly budget, in US dollars (only with billing_account)."
  type        = number
  default     = 100
}

variable "budget_alert_thresholds" {
  description = "Fractions of the budget at which billing admins are alerted (actual spend; the last also on forecast)."
  type        = list(number)
  default     = [0.5, 0.9, 1.0]
}

# --- watching it (monitoring.tf; docs/decisions/0030) ----------------------------------------------

variable "notification_channels" {
  description = "Cloud Monitoring notification channels the alerts go to (projects/P/notificationChannels/ID, e.g. from `gcloud beta monitoring channels list`); empty: incidents only, no notification."
  type        = list(string)
  default     = []
}

variable "spend_alert_fraction" {
  description = "Fraction of deployment_daily_usd (the deployment's daily ceiling) at which the spend alert fires."
  type        = number
  default     = 0.8

  validation {
    condition     = var.spend_alert_fraction > 0 && var.spend_alert_fraction <= 1
    error_message = "spend_alert_fraction must be in (0, 1]."
  }
}

variable "error_ratio_threshold" {
  description = "Share of 5xx answers, or of failed sketches, above which the errors alert fires."
  type        = number
  default     = 0.05
}

variable "time_to_done_p99_s" {
  description = "p99 of a job's time from submission to done (seconds) above which the latency alert fires."
  type        = number
  default     = 300
}
