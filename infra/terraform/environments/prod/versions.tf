terraform {
  # 1.9: variables.tf validates one variable against another (cors_origins by environment);
  # older Terraform refuses that configuration. 2.x is not known yet.
  required_version = ">= 1.9, < 2.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
    # google_project_service_identity (service agents created before IAM is granted to them).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.50"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
    # The effective organisation policy (main.tf, data.http.member_domains).
    http = {
      source  = "hashicorp/http"
      version = "~> 3.4"
    }
  }

  # State in a GCS bucket (create it once, versioned, outside Terraform):
  #   gcloud storage buckets create gs://PROJECT_ID-tfstate --location=us-central1 \
  #     --uniform-bucket-level-access --public-access-prevention
  #   gcloud storage buckets update gs://PROJECT_ID-tfstate --versioning
  # then `terraform init -backend-config="bucket=PROJECT_ID-tfstate"` (make plan/deploy pass
  # TF_STATE_BUCKET). Partial configuration keeps the bucket name out of the repo.
  backend "gcs" {
    prefix = "sketchgen/prod"
  }
}
