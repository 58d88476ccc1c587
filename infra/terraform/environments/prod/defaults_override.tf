# prod: a warm API, more instances, deletion protection, longer retention, explicit HTTPS CORS
# origins (no default: set them in terraform.tfvars). These defaults are what make this
# environment prod; the declarations are shared with dev (environments/_shared/variables.tf).

variable "environment" {
  default = "prod"
}

variable "deletion_protection" {
  default = true
}

variable "firestore_pitr" {
  default = true
}

variable "output_retention_days" {
  default = 90
}

variable "log_level" {
  default = "INFO"
}

variable "gemini_rpm" {
  default = 100
}

variable "dead_letter_retention" {
  default = "1209600s"
}

variable "generate_min_instances" {
  default = 1
}

variable "generate_max_instances" {
  default = 50
}

variable "stream_max_instances" {
  default = 20
}

variable "deployment_daily_usd" {
  default = 500
}

variable "require_verified_email" {
  default = true
}
