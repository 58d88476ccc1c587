output "topic_id" {
  description = "Topic resource id (projects/P/topics/NAME)."
  value       = google_pubsub_topic.this.id
}

output "topic_name" {
  description = "Topic short name."
  value       = google_pubsub_topic.this.name
}

output "subscription_name" {
  description = "Push subscription name, or null."
  value       = try(google_pubsub_subscription.push["push"].name, null)
}

output "dead_letter_topic_id" {
  description = "Dead-letter topic id, or null."
  value       = try(google_pubsub_topic.dead_letter["push"].id, null)
}

output "dead_letter_subscription_name" {
  description = "Pull subscription holding dead letters, or null."
  value       = try(google_pubsub_subscription.dead_letter["push"].name, null)
}

output "unhandled_subscription_name" {
  description = "Pull subscription holding dead letters the dead-letter push could not deliver either, or null."
  value       = try(google_pubsub_subscription.unhandled["push"].name, null)
}
