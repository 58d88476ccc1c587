variable "project_id" {
  description = "Project that owns the bucket."
  type        = string
}

variable "name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "location" {
  description = "Bucket location (a region, next to the functions)."
  type        = string
}

variable "labels" {
  description = "Labels on the bucket."
  type        = map(string)
  default     = {}
}

variable "versioning" {
  description = "Keep noncurrent object versions."
  type        = bool
  default     = false
}

variable "force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket (dev only)."
  type        = bool
  default     = false
}

variable "soft_delete_retention_seconds" {
  description = "Soft delete window for deleted objects (0 disables; 7-90 days otherwise)."
  type        = number
  default     = 604800

  validation {
    condition     = var.soft_delete_retention_seconds == 0 || (var.soft_delete_retention_seconds >= 604800 && var.soft_delete_retention_seconds <= 7776000)
    error_message = "soft_delete_retention_seconds must be 0 or between 7 and 90 days."
  }
}

variable "delete_after_days" {
  description = "Lifecycle: delete objects under each prefix (key) once they are this many days old (value)."
  type        = map(number)
  default     = {}
}

variable "members" {
  description = "Bucket IAM grants, by a static key: { key = { role = ..., member = ... } }. Never allUsers or allAuthenticatedUsers."
  type = map(object({
    role   = string
    member = string
  }))
  default = {}

  validation {
    condition     = alltrue([for m in values(var.members) : !contains(["allUsers", "allAuthenticatedUsers"], m.member)])
    error_message = "This module makes private buckets: no allUsers / allAuthenticatedUsers grants."
  }
}

variable "cors_origins" {
  description = "Origins a browser may GET objects from (signed URLs); empty = no CORS rule."
  type        = list(string)
  default     = []
}

variable "noncurrent_versions_kept" {
  description = "With versioning: how many noncurrent versions of an object to keep (older ones are deleted); null keeps all."
  type        = number
  default     = null
}
