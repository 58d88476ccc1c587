# prod: a warm API, more instances, deletion protection, longer retention, explicit HTTPS CORS
# origins. Defaults here are what makes this environment prod; main.tf is shared with dev.

variable "environment" {
  description = "Environment name, used in labels."
  type        = string
  default     = "prod"
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
  default     = true
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
  default     = true
}

variable "output_retention_days" {
  description = "Days before sketches under jobs/ are deleted from the bucket; job documents expire (TTL) with them."
  type        = number
  default     = 90

  validation {
    condition     = var.output_retention_days >= 1
    error_message = "output_retention_days must be at least 1."
  }
}

variable "cors_origins" {
  description = "Web app origins allowed to call the API from a browser (no default in prod)."
  type        = list(string)

  validation {
    condition     = length(var.cors_origins) > 0 && alltrue([for o in var.cors_origins : can(regex("^https://[a-z0-9.-]+(:[0-9]+)?$", o))])
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
  default     = "INFO"
}

variable "gemini_model" {
  description = "Gemini image model (GEMINI_MODEL)."
  type        = string
  default     = "gemini-2.5-flash-image"
}

variable "gemini_rpm" {
  description = "Requests per minute the Gemini quota allows this deployment (the project's tier limit for the model, minus other users of the key)."
  type        = number
  default     = 100
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
  description = "Push deliveries of one sketch message before it goes to the dead-letter topic (also SKETCHGEN_MAX_DELIVERIES)."
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
  default     = "1209600s"
}

variable "generate_min_instances" {
  description = "Warm instances of the API."
  type        = number
  default     = 1
}

variable "generate_max_instances" {
  description = "Upper bound on API instances."
  type        = number
  default     = 50
}

variable "stream_max_instances" {
  description = "Upper bound on SSE instances (each holds up to 400 streams)."
  type        = number
  default     = 20
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
  description = "The deployment's spend ceiling in USD a UTC day, across all users (SKETCHGEN_DEPLOYMENT_DAILY_USD; docs/decisions/0021); null: none."
  type        = number
  default     = 500
}

variable "require_verified_email" {
  description = "Sign-in only for Firebase users whose email is verified (SKETCHGEN_REQUIRE_VERIFIED_EMAIL)."
  type        = bool
  default     = true
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
