output "name" {
  description = "Database id."
  value       = google_firestore_database.this.name
}

output "id" {
  description = "Database resource id (projects/P/databases/NAME)."
  value       = google_firestore_database.this.id
}

output "location" {
  description = "Database location."
  value       = google_firestore_database.this.location_id
}

output "rules_release" {
  description = "Name of the rules release."
  value       = google_firebaserules_release.this.name
}
