# dev: scale to zero, small quota, easy teardown. These defaults are what make this environment
# dev; the declarations are shared with prod (environments/_shared/variables.tf).

variable "environment" {
  default = "dev"
}

variable "deletion_protection" {
  default = false
}

variable "firestore_pitr" {
  default = false
}

variable "output_retention_days" {
  default = 30
}

variable "cors_origins" {
  default = ["http://localhost:8080", "http://127.0.0.1:8080"]
}

variable "log_level" {
  default = "DEBUG"
}

variable "gemini_rpm" {
  default = 10
}

variable "dead_letter_retention" {
  default = "604800s"
}

variable "generate_min_instances" {
  default = 0
}

variable "generate_max_instances" {
  default = 5
}

variable "stream_max_instances" {
  default = 5
}
