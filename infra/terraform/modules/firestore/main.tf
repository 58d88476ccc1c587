# A Firestore database in native mode, the composite indexes the queries need, TTL policies,
# and the security rules released for it.

locals {
  # The default database's rules release is "cloud.firestore"; a named one appends its id.
  release_name = var.name == "(default)" ? "cloud.firestore" : "cloud.firestore/${var.name}"
}

resource "google_firestore_database" "this" {
  project                           = var.project_id
  name                              = var.name
  location_id                       = var.location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = var.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # Without protection, terraform destroy really deletes the database (dev); with it, the
  # database is only removed from state.
  deletion_policy = var.deletion_protection ? "ABANDON" : "DELETE"
}

resource "google_firestore_index" "this" {
  for_each = var.indexes

  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }
}

# TTL: Firestore deletes a document some time (typically within 24 h) after this timestamp.
# index_config {} also drops the field's single-field indexes: nothing queries by it, and a
# monotonically increasing indexed timestamp is a write hotspot.
resource "google_firestore_field" "ttl" {
  for_each = var.ttl_fields

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.key
  field      = each.value

  ttl_config {}
  index_config {}
}

resource "google_firebaserules_ruleset" "this" {
  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = var.rules
    }
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_firestore_database.this]
}

resource "google_firebaserules_release" "this" {
  project      = var.project_id
  name         = local.release_name
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.this.name}"

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.this]
  }
}

# Vector indexes (find_nearest): equality pre-filters, then __name__, then the vector field. A
# vector index holds vectors of exactly one dimension. Firestore stores every vector index with
# __name__ (ascending) before the vector field whether or not it is asked for; declared here,
# the plan after an apply is empty instead of replacing the index (tests/deploy).
resource "google_firestore_index" "vector" {
  for_each = var.vector_indexes

  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.filters
    content {
      field_path = fields.value
      order      = "ASCENDING"
    }
  }

  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }

  fields {
    field_path = each.value.vector_field
    vector_config {
      dimension = each.value.dimension
      flat {}
    }
  }
}

# Single fields queried across a collection group (e.g. every style's references): Firestore
# indexes single fields per collection only, so the collection-group scope is asked for here.
resource "google_firestore_field" "group" {
  for_each = var.collection_group_fields

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.value.collection
  field      = each.value.field

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
  }
}
