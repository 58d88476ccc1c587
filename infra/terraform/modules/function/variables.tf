variable "project_id" {
  description = "Project that hosts the function."
  type        = string
}

variable "region" {
  description = "Region of the function (and of its event trigger)."
  type        = string
}

variable "name" {
  description = "Function name; also the name of the Cloud Run service behind it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.name))
    error_message = "Use lowercase letters, digits and hyphens (a Cloud Run service name)."
  }
}

variable "description" {
  description = "What the function does."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels on the function."
  type        = map(string)
  default     = {}
}

variable "service_account_id" {
  description = "account_id of the function's own service account (6-30 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "A service account id is 6-30 lowercase letters, digits or hyphens."
  }
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "entry_point" {
  description = "Name of the Python function in main.py."
  type        = string
}

variable "source_bucket" {
  description = "Bucket that holds the source zip."
  type        = string
}

variable "source_object" {
  description = "Object name of the source zip; named by content hash, so a new name means new code."
  type        = string
}

variable "build_service_account" {
  description = "Service account Cloud Build runs as (projects/P/serviceAccounts/EMAIL); null = the project default."
  type        = string
  default     = null
}

variable "environment" {
  description = "Plain (non-secret) environment variables."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Environment variables read from Secret Manager, by variable name. The function's service account is granted accessor on each secret."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "project_roles" {
  description = "Project-level roles for the function's service account."
  type        = set(string)
  default     = []
}

variable "ingress" {
  description = "ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "public_invoker" {
  description = "Grant roles/run.invoker to allUsers. Only for endpoints that authenticate every request themselves."
  type        = bool
  default     = false
}

variable "invoker_members" {
  description = "Other members allowed to invoke, by a static key (e.g. { push = \"serviceAccount:...\" })."
  type        = map(string)
  default     = {}
}

variable "event_trigger" {
  description = "Optional Eventarc trigger; the function's service account is the trigger identity."
  type = object({
    event_type   = string
    pubsub_topic = optional(string)
    retry        = optional(bool, false)
  })
  default = null
}

variable "min_instances" {
  description = "Instances kept warm."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Upper bound on instances."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1
    error_message = "max_instances must be at least 1."
  }
}

variable "concurrency" {
  description = "Requests served at once by one instance (also gunicorn's THREADS)."
  type        = number
  default     = 1

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be between 1 and 1000."
  }
}

variable "cpu" {
  description = "vCPUs per instance (concurrency > 1 needs at least 1)."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory per instance, e.g. 512Mi or 1Gi."
  type        = string
  default     = "512Mi"
}

variable "timeout_seconds" {
  description = "Request timeout (HTTP functions up to 3600 s; event functions up to 540 s)."
  type        = number
  default     = 60
}

variable "iam_propagation_wait" {
  description = "How long the function waits after its grants are made or changed before it deploys (IAM propagation)."
  type        = string
  default     = "90s"
}
