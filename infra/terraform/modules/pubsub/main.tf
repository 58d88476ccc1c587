# A topic, and optionally an authenticated push subscription on it with a retry policy and a
# dead-letter topic (plus a pull subscription that keeps the dead letters for inspection).

locals {
  pubsub_agent = "serviceAccount:service-${var.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  push         = var.push == null ? {} : { push = var.push }
}

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:Messages carry job ids and indexes only; Google-managed encryption is enough and CMEK is not used in this project.
  project                    = var.project_id
  name                       = var.name
  labels                     = var.labels
  message_retention_duration = var.message_retention_duration
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Dead letters carry job ids and indexes only; Google-managed encryption is enough and CMEK is not used in this project.
  for_each = local.push

  project = var.project_id
  name    = "${var.name}-dead-letter"
  labels  = var.labels
}

# Dead letters are kept here to be read (gcloud pubsub subscriptions pull) and replayed.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.push

  project                    = var.project_id
  name                       = "${var.name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = false

  expiration_policy {
    ttl = "" # never expire, even when nobody reads it for a month
  }
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push

  project                    = var.project_id
  name                       = each.value.subscription_name
  topic                      = google_pubsub_topic.this.id
  labels                     = var.labels
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = each.value.message_retention_duration

  push_config {
    push_endpoint = each.value.endpoint

    oidc_token {
      service_account_email = each.value.oidc_service_account_email
      audience              = coalesce(each.value.audience, each.value.endpoint)
    }
  }

  retry_policy {
    minimum_backoff = each.value.minimum_backoff
    maximum_backoff = each.value.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}

locals {
  dead_letter_push = { for key, push in local.push : key => push if push.dead_letter_endpoint != null }
}

# Dead letters pushed to the application too (it ends their work as failed, with the reason),
# signed like the main push; the pull subscription above keeps them for inspection either way.
# It has a retry and dead-letter policy of its own: a dead letter the application cannot take
# (its endpoint failing every time) stops being pushed after dead_letter_push_attempts and is
# kept on NAME-dead-letter-unhandled for a person, instead of being retried until it expires.
resource "google_pubsub_subscription" "dead_letter_push" {
  for_each = local.dead_letter_push

  project                    = var.project_id
  name                       = "${each.value.subscription_name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention

  push_config {
    push_endpoint = each.value.dead_letter_endpoint

    oidc_token {
      service_account_email = each.value.oidc_service_account_email
      audience              = coalesce(each.value.audience, each.value.endpoint)
    }
  }

  retry_policy {
    minimum_backoff = each.value.minimum_backoff
    maximum_backoff = each.value.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.unhandled[each.key].id
    max_delivery_attempts = var.dead_letter_push_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.unhandled_publisher]
}

# Dead letters the application could not take either, kept to be read and replayed by hand.
resource "google_pubsub_topic" "unhandled" {
  #checkov:skip=CKV_GCP_83:Dead letters carry job ids and indexes only; Google-managed encryption is enough and CMEK is not used in this project.
  for_each = local.dead_letter_push

  project = var.project_id
  name    = "${var.name}-dead-letter-unhandled"
  labels  = var.labels
}

resource "google_pubsub_subscription" "unhandled" {
  for_each = local.dead_letter_push

  project                    = var.project_id
  name                       = "${var.name}-dead-letter-unhandled"
  topic                      = google_pubsub_topic.unhandled[each.key].id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "unhandled_publisher" {
  for_each = local.dead_letter_push

  project = var.project_id
  topic   = google_pubsub_topic.unhandled[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_push_subscriber" {
  for_each = local.dead_letter_push

  project      = var.project_id
  subscription = google_pubsub_subscription.dead_letter_push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The Pub/Sub service agent forwards undeliverable messages: it must publish to the dead-letter
# topic and acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.push

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "push_subscriber" {
  for_each = local.push

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = var.publishers

  project = var.project_id
  topic   = google_pubsub_topic.this.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}
