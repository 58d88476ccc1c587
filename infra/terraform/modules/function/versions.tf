terraform {
  required_version = ">= 1.9, < 2.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    # time_sleep: the wait for IAM propagation before the function deploys.
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }
}
