# What the clients and the operators need. Nothing secret: the Gemini key is only in Secret
# Manager, and the Firebase web config (public) comes from the Firebase console.

output "project_id" {
  description = "Google Cloud project id."
  value       = var.project_id
}

output "firebase_project_id" {
  description = "Firebase project id for the web and mobile apps (same project); their Firebase config comes from the Firebase console."
  value       = var.project_id
}

output "api_url" {
  description = "Base URL of the JSON API (generate): POST /v1/jobs, GET /v1/jobs/{id}, GET /v1/styles, /healthz."
  value       = module.function["generate"].url
}

output "web_url" {
  description = "The web page: the API's URL with a trailing slash (the page's paths are relative to it)."
  value       = "${module.function["generate"].url}/"
}

output "events_url" {
  description = "Base URL of the SSE endpoint (stream): GET /v1/jobs/{id}/events."
  value       = module.function["stream"].url
}

output "bucket" {
  description = "Outputs bucket (sketches under jobs/{job_id}/; clients get signed URLs from the API)."
  value       = module.outputs_bucket.name
}

output "firestore_database" {
  description = "Firestore database id; mobile clients listen on jobs/{job_id} in it."
  value       = module.firestore.name
}

output "sketch_topic" {
  description = "Pub/Sub topic the API publishes one message per sketch to."
  value       = module.sketch_topic.topic_id
}

output "dead_letter_subscription" {
  description = "Pull subscription with sketch messages that exhausted their deliveries."
  value       = module.sketch_topic.dead_letter_subscription_name
}

output "regenerate_topic" {
  description = "Pub/Sub topic that triggers regeneration (Cloud Scheduler publishes to it)."
  value       = module.regenerate_topic.topic_id
}

output "gemini_secret" {
  description = "Secret Manager secret to add the Gemini API key to (gcloud secrets versions add)."
  value       = google_secret_manager_secret.gemini_api_key.secret_id
}

output "worker_sizing" {
  description = "The worker's sizing and time budget as computed in main.tf (docs/DEPLOY.md, 'Sizing the worker')."
  value = {
    max_instances     = local.worker_max_instances
    concurrency       = var.worker_concurrency
    memory            = local.sizing["sketch_worker"].memory
    timeout_s         = local.worker_timeout_s
    ack_deadline_s    = local.ack_deadline_s
    lease_s           = local.lease_s
    quota_wait_s      = local.quota_wait_s
    lease_wait_s      = local.lease_wait_s
    model_timeout_s   = var.model_timeout_s
    model_timeout_max = local.model_timeout_max
  }
}

output "firebase_web_api_key" {
  description = "The Firebase web app's API key (public by design: it identifies the app)."
  value       = var.firebase_web_api_key
}

output "function_services" {
  description = "Cloud Run services behind the functions (for revisions and traffic during a rollback)."
  value       = { for name, function in module.function : name => function.service }
}

output "deployed_sources" {
  description = "Source zip deployed for each function folder (content hash in the name)."
  value       = { for name, object in google_storage_bucket_object.source : name => object.name }
}

output "dashboard" {
  description = "The Cloud Monitoring dashboard (monitoring.tf)."
  value       = "https://console.cloud.google.com/monitoring/dashboards/builder/${basename(google_monitoring_dashboard.sketchgen.id)}?project=${var.project_id}"
}

output "unhandled_dead_letters" {
  description = "Pull subscription with dead letters the worker's /dead-letter endpoint could not take either."
  value       = module.sketch_topic.unhandled_subscription_name
}
