variable "project_id" {
  description = "Project that hosts the database."
  type        = string
}

variable "name" {
  description = "Database id; \"(default)\" is the one mobile SDKs use without configuration."
  type        = string
  default     = "(default)"
}

variable "location" {
  description = "Database location: a region (us-central1) or a multi-region (nam5, eur3)."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the database (and abandon it on terraform destroy)."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Keep 7 days of versions for point-in-time recovery (billed as storage)."
  type        = bool
  default     = false
}

variable "indexes" {
  description = "Composite indexes by a static key: collection and ordered fields (order ASCENDING or DESCENDING)."
  type = map(object({
    collection = string
    fields = list(object({
      field_path = string
      order      = string
    }))
  }))
  default = {}
}

variable "ttl_fields" {
  description = "TTL policies: collection group => timestamp field."
  type        = map(string)
  default     = {}
}

variable "rules" {
  description = "Content of the Firestore security rules to release for this database."
  type        = string
}

variable "vector_indexes" {
  description = "Vector indexes by a static key: collection (group), equality pre-filter fields, the vector field and its dimension."
  type = map(object({
    collection   = string
    filters      = list(string)
    vector_field = string
    dimension    = number
  }))
  default = {}
}

variable "collection_group_fields" {
  description = "Single-field indexes with collection-group scope, by a static key: collection (group) and field."
  type = map(object({
    collection = string
    field      = string
  }))
  default = {}
}
