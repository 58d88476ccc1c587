output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.this.name
}

output "url" {
  description = "HTTPS URL of the function (cloudfunctions.net)."
  value       = google_cloudfunctions2_function.this.url
}

output "uri" {
  description = "run.app URI of the Cloud Run service; the one internal callers (Pub/Sub push) must use."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service" {
  description = "Cloud Run service behind the function (revisions, traffic, IAM)."
  value       = google_cloudfunctions2_function.this.service_config[0].service
}

output "service_account_email" {
  description = "Runtime service account email."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "Runtime service account as an IAM member (serviceAccount:EMAIL)."
  value       = google_service_account.this.member
}

output "service_account_name" {
  description = "Runtime service account resource name (projects/P/serviceAccounts/EMAIL), for IAM on the account itself."
  value       = google_service_account.this.name
}
