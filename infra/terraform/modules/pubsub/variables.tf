variable "project_id" {
  description = "Project that hosts the topic."
  type        = string
}

variable "project_number" {
  description = "Project number, for the Pub/Sub service agent (service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com)."
  type        = string
}

variable "name" {
  description = "Topic name; the dead-letter topic and its subscription are named NAME-dead-letter."
  type        = string
}

variable "labels" {
  description = "Labels on every resource."
  type        = map(string)
  default     = {}
}

variable "message_retention_duration" {
  description = "How long the topic keeps messages (for seek/replay); null = not retained beyond subscriptions."
  type        = string
  default     = null
}

variable "publishers" {
  description = "Members allowed to publish to the topic, by a static key."
  type        = map(string)
  default     = {}
}

variable "push" {
  description = <<-EOT
    Optional authenticated push subscription. Pub/Sub signs each request with an OIDC token for
    oidc_service_account_email (audience defaults to the endpoint); failed deliveries are retried
    with exponential backoff between minimum_backoff and maximum_backoff and, after
    max_delivery_attempts, moved to the dead-letter topic.
  EOT
  type = object({
    subscription_name          = string
    endpoint                   = string
    oidc_service_account_email = string
    audience                   = optional(string)
    ack_deadline_seconds       = optional(number, 60)
    dead_letter_endpoint       = optional(string) # also push the dead letters here
    message_retention_duration = optional(string, "604800s")
    minimum_backoff            = optional(string, "10s")
    maximum_backoff            = optional(string, "600s")
    max_delivery_attempts      = optional(number, 5)
  })
  default = null

  validation {
    condition = var.push == null ? true : (
      var.push.ack_deadline_seconds >= 10 && var.push.ack_deadline_seconds <= 600 &&
      var.push.max_delivery_attempts >= 5 && var.push.max_delivery_attempts <= 100
    )
    error_message = "ack_deadline_seconds must be 10-600 and max_delivery_attempts 5-100 (Pub/Sub limits)."
  }
}

variable "dead_letter_retention" {
  description = "How long undelivered dead letters are kept on the inspection subscription (at most 31 days)."
  type        = string
  default     = "1209600s" # 14 days
}

variable "dead_letter_push_attempts" {
  description = "Pushes of one dead letter to dead_letter_endpoint before it is moved to NAME-dead-letter-unhandled (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.dead_letter_push_attempts >= 5 && var.dead_letter_push_attempts <= 100
    error_message = "Pub/Sub allows 5-100 delivery attempts."
  }
}
