# A private bucket: uniform bucket-level access, public access prevention enforced, no public
# IAM. Readers and writers are granted per bucket; browsers only ever get V4 signed URLs.

resource "google_storage_bucket" "this" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs (Data Access) instead of legacy usage/storage logs, which would need a second bucket per bucket.
  #checkov:skip=CKV_GCP_78:Versioning is a per-bucket choice (variable versioning): job outputs are regenerable and must really disappear after their retention; source zips are content-addressed and never overwritten.
  project                     = var.project_id
  name                        = var.name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = var.versioning
  }

  # Browsers fetch objects by signed URL (GET only; the signature is the authorisation).
  dynamic "cors" {
    for_each = length(var.cors_origins) > 0 ? [var.cors_origins] : []
    content {
      origin          = cors.value
      method          = ["GET", "HEAD"]
      response_header = ["Content-Type", "Content-Length"]
      max_age_seconds = 3600
    }
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_seconds
  }

  dynamic "lifecycle_rule" {
    for_each = var.versioning && var.noncurrent_versions_kept != null ? [var.noncurrent_versions_kept] : []
    content {
      condition {
        num_newer_versions = lifecycle_rule.value
        with_state         = "ARCHIVED"
      }
      action {
        type = "Delete"
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.delete_after_days
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = [lifecycle_rule.key]
      }
      action {
        type = "Delete"
      }
    }
  }
}

resource "google_storage_bucket_iam_member" "this" {
  for_each = var.members

  bucket = google_storage_bucket.this.name
  role   = each.value.role
  member = each.value.member
}
