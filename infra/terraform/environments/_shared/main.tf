# sketchgen on Google Cloud. environments/dev and environments/prod both use this file through
# a symlink (scripts/check_terraform.sh checks it): the environments differ only in their
# variables.tf defaults, their tfvars and their state prefix (versions.tf).
#
#   generate (HTTPS, public, app auth) --publish--> sketch topic --push (OIDC)--> sketch_worker
#   regenerate (Eventarc) <-- regenerate topic <-- Cloud Scheduler        |  \--> dead letters
#   stream (HTTPS SSE, public, app auth) <-- Firestore <-- worker --> outputs bucket (jobs/...)

provider "google" {
  project = var.project_id
  region  = var.region
  # Bill API quota to this project: the Firebase Rules API refuses user credentials (gcloud
  # auth application-default login) that carry no quota project.
  user_project_override = true
  billing_project       = var.project_id

  default_labels = {
    app = "sketchgen"
    env = var.environment
  }
}

provider "google-beta" {
  project               = var.project_id
  region                = var.region
  user_project_override = true
  billing_project       = var.project_id
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  prefix = "sketchgen"

  # Source zips from `make build` (scripts/build_functions.py): { name = "NAME-SHA256[:12].zip" },
  # paths relative to the manifest.
  manifest_dir = dirname(var.functions_manifest)
  manifest     = jsondecode(file(var.functions_manifest))

  # The worker's time budget, its lease and the push's redelivery, from the numbers in
  # infra/functions.yaml (delivery:), by the arithmetic of sketchgen.timing.DeliveryTiming
  # (docs/decisions/0054; tests/deploy/test_lease_timing.py evaluates these locals against it).
  # A delivery that finds its sketch leased by another waits up to lease_wait_s for that lease
  # to end (SKETCHGEN_LEASE_WAIT_S), waits up to quota_wait_s for a model slot (else it answers
  # "later" and the retry policy spaces the next delivery out), makes up to 2 model calls
  # (docs/decisions/0001), then finishes and uploads (worker_overhead_s). Pub/Sub waits at
  # most 600 s for a push's answer, so the request timeout must fit in 600 s, and that bounds
  # model_timeout_s:
  #   lease_wait_s + quota_wait_s + 2 * model_timeout_s + worker_overhead_s <= 600
  #   => model_timeout_s <= (600 - 60 - 60 - 60) / 2 = 210
  # (checked below, before anything is deployed). The lease is short and the live worker
  # renews it every third of it while it holds the sketch (docs/decisions/0069), so it never
  # loses it; a worker that dies, even right after its claim, is pushed again at least
  # minimum_backoff_s later, and that delivery waits out the rest of the lease
  # (lease_s <= minimum_backoff_s + lease_wait_s).
  delivery           = local.definition.delivery
  ack_deadline_max_s = local.delivery.ack_deadline_max_s
  lease_wait_s       = local.delivery.lease_wait_s
  quota_wait_s       = local.delivery.quota_wait_s
  worker_overhead_s  = local.delivery.worker_overhead_s
  model_timeout_max  = floor((local.ack_deadline_max_s - local.lease_wait_s - local.quota_wait_s - local.worker_overhead_s) / 2)
  worker_timeout_s   = local.lease_wait_s + local.quota_wait_s + var.model_timeout_s * 2 + local.worker_overhead_s
  ack_deadline_s     = local.worker_timeout_s
  lease_s            = local.delivery.lease_s

  # Little's law: requests in flight = request rate x latency. At gemini_rpm requests a minute
  # taking model_latency_s each, about gemini_rpm * model_latency_s / 60 calls are open at once.
  # The quota gate (SKETCHGEN_MODEL_RPM) holds the rate itself; deliveries waiting for a slot
  # are sleeping requests, so instances get twice the room: waiting sketches of other users
  # must reach a worker to ask for their fair share.
  # Requests one stream instance holds (Cloud Run's maximum): each an open event stream.
  stream_concurrency = 1000

  worker_max_instances = max(1, ceil(2 * var.gemini_rpm * var.model_latency_s / 60 / var.worker_concurrency))

  # The functions, defined once (infra/functions.yaml; docs/decisions/0007): sources, triggers,
  # the variable names each gets, its secrets and what it may do. make dev reads the same file.
  definition = yamldecode(file("${path.module}/../../../functions.yaml"))

  # gen2 functions answer at https://REGION-PROJECT.cloudfunctions.net/NAME (the function's own
  # URL is an output of the module, but a module cannot feed one instance's URL to another).
  functions_host = "https://${var.region}-${var.project_id}.cloudfunctions.net"
  function_names = { for name, _ in local.definition.functions : name => "${local.prefix}-${replace(name, "_", "-")}" }

  # One value per variable name in the definition (make dev: dev.topology local_values).
  # An empty value is not set, here and locally (sketchgen's settings treat both alike).
  env_values = {
    SKETCHGEN_PROJECT            = var.project_id
    SKETCHGEN_AUTH               = "firebase"
    SKETCHGEN_JOB_STORE          = "firestore"
    SKETCHGEN_FIRESTORE_DATABASE = module.firestore.name
    # Blob keys already start with jobs/ (sketchgen.service), so the store is the bucket root.
    SKETCHGEN_BLOB_URL           = "gs://${module.outputs_bucket.name}"
    SKETCHGEN_SKETCH_TOPIC       = module.sketch_topic.topic_id
    SKETCHGEN_REGENERATE_TOPIC   = module.regenerate_topic.topic_id
    SKETCHGEN_JOB_RETENTION_DAYS = tostring(var.output_retention_days)
    SKETCHGEN_MAX_DELIVERIES     = tostring(var.max_delivery_attempts)
    SKETCHGEN_MODEL_TIMEOUT_S    = tostring(var.model_timeout_s)
    SKETCHGEN_LEASE_S            = tostring(local.lease_s)
    SKETCHGEN_LEASE_WAIT_S       = tostring(local.lease_wait_s) # inside the worker's time budget
    SKETCHGEN_CORS_ORIGINS       = join(",", var.cors_origins)
    SKETCHGEN_LOG_LEVEL          = var.log_level
    SKETCHGEN_LOG_FORMAT         = "json"  # one object a line: Cloud Logging parses it
    SKETCHGEN_TELEMETRY          = "cloud" # Cloud Trace and Cloud Monitoring (docs/decisions/0030)
    # Public by design (it identifies the Firebase web app); see sketchgen.bootstrap.web_config.
    SKETCHGEN_FIREBASE_WEB_API_KEY   = var.firebase_web_api_key
    SKETCHGEN_EVENTS_BASE_URL        = "${local.functions_host}/${local.function_names["stream"]}"
    SKETCHGEN_MODEL_RPM              = tostring(var.gemini_rpm) # shared by every instance (Firestore)
    SKETCHGEN_QUOTA_WAIT_S           = tostring(local.quota_wait_s)
    SKETCHGEN_WORKER_OVERHEAD_S      = tostring(local.worker_overhead_s) # bounds a hold (ADR 0073)
    SKETCHGEN_QUOTA_HORIZON_S        = "10"
    SKETCHGEN_USER_DAILY_IMAGES      = tostring(var.user_daily_images)
    SKETCHGEN_USER_ACTIVE_JOBS       = tostring(var.user_active_jobs)
    SKETCHGEN_USER_STREAMS           = tostring(var.user_streams)
    SKETCHGEN_DEPLOYMENT_DAILY_USD   = var.deployment_daily_usd == null ? "" : tostring(var.deployment_daily_usd)
    SKETCHGEN_REQUIRE_VERIFIED_EMAIL = tostring(var.require_verified_email)
    SKETCHGEN_APP_CHECK              = tostring(var.app_check)
    SKETCHGEN_PROJECT_NUMBER         = data.google_project.this.number
    # A connection carries ~100 streams (listeners); keep each under 90 at full concurrency.
    SKETCHGEN_FIRESTORE_CHANNELS = tostring(ceil(local.stream_concurrency / 90))
    GEMINI_MODEL                 = var.gemini_model
    GOOGLE_GEMINI_BASE_URL       = "https://generativelanguage.googleapis.com"
  }

  secrets   = { "gemini-api-key" = google_secret_manager_secret.gemini_api_key.secret_id }
  topic_ids = { sketch = module.sketch_topic.topic_id, regenerate = module.regenerate_topic.topic_id }

  # Per function, from the definition: its environment and secrets, and the project roles and
  # invokers its trigger and grants need.
  functions = {
    for name, f in local.definition.functions : name => {
      environment = {
        for variable in concat(local.definition.shared_env, try(f.env, [])) :
        variable => local.env_values[variable] if local.env_values[variable] != ""
      }
      secrets = { for variable, secret in try(f.secrets, {}) : variable => { secret = local.secrets[secret] } }
      project_roles = compact([
        lookup({ read = "roles/datastore.viewer", read_write = "roles/datastore.user" }, try(f.may.firestore, ""), ""),
        f.trigger.type == "event" ? "roles/eventarc.eventReceiver" : "",
        # Every function writes its spans and metrics (SKETCHGEN_TELEMETRY = cloud).
        "roles/cloudtrace.agent",
        "roles/monitoring.metricWriter",
      ])
      public = f.trigger.type == "http" && try(f.trigger.public, false)
    }
  }

  # Sizing depends on this environment's variables, so it lives here, keyed like the definition
  # (a function missing here fails the plan: local.sizing[name]).
  sizing = {
    generate = {
      min_instances = var.generate_min_instances, max_instances = var.generate_max_instances
      concurrency   = 16, memory = "512Mi", timeout_seconds = 60
    }
    sketch_worker = {
      min_instances = 0, max_instances = local.worker_max_instances, concurrency = var.worker_concurrency
      memory        = "2Gi", timeout_seconds = local.worker_timeout_s # 4K images: ~170 MiB each in memory
    }
    # An async function (docs/decisions/0014): an open stream is a task and a queue on its
    # job's one Firestore listener, no thread. Measured (docs/BENCHMARKS.md, Streams): one
    # instance holds 1,000 clients of a job at well under 64 KiB each; 1Gi leaves room for
    # 1,000 clients of 1,000 different jobs (a listener each, ~320 KiB).
    stream = {
      min_instances = 0, max_instances = var.stream_max_instances
      concurrency   = local.stream_concurrency, memory = "1Gi", timeout_seconds = 3600
    }
    # Draws like the worker (batch results and re-runs of 4K jobs): the worker's memory.
    regenerate = {
      min_instances = 0, max_instances = 1, concurrency = 1, memory = "2Gi", timeout_seconds = 540
    }
  }

  # IAM from the grants in the definition.
  publishers = {
    for topic, _ in local.definition.topics : topic => {
      for name, f in local.definition.functions : name => module.function[name].service_account_member
      if contains(try(f.may.publish, []), topic)
    }
  }
  outputs_bucket_members = {
    for name, f in local.definition.functions : name => {
      role   = f.may.buckets.outputs == "read_write" ? "roles/storage.objectUser" : "roles/storage.objectViewer"
      member = module.function[name].service_account_member
    } if can(f.may.buckets.outputs)
  }
  url_signers     = { for name, f in local.definition.functions : name => f if try(f.may.sign_urls, false) }
  push_function   = one([for name, f in local.definition.functions : name if f.trigger.type == "push"])
  event_functions = { for name, f in local.definition.functions : name => f if f.trigger.type == "event" }
}

# Domain restricted sharing would refuse the allUsers invoker of the public functions halfway
# through the first apply; read it first, and stop with what to do. The policy that applies is
# the effective one: set on the project, or inherited from its folders and organisation (the
# usual case). The provider's google_project_organization_policy reads only a policy set on
# the project itself, and no data source reads the effective one, so this asks Cloud Resource
# Manager directly (projects.getEffectiveOrgPolicy, v1), as the one running the apply
# (needs orgpolicy.policy.get on the project: Owner, or Organization Policy Viewer).
data "google_client_config" "deployer" {}

data "http" "member_domains" {
  url    = "https://cloudresourcemanager.googleapis.com/v1/projects/${var.project_id}:getEffectiveOrgPolicy"
  method = "POST"
  request_headers = {
    Authorization       = "Bearer ${data.google_client_config.deployer.access_token}"
    Content-Type        = "application/json"
    x-goog-user-project = var.project_id
  }
  request_body = jsonencode({ constraint = "constraints/iam.allowedPolicyMemberDomains" })
}

locals {
  # An OrgPolicy: listPolicy.allowedValues (customer ids) restricts; allValues = ALLOW, or no
  # listPolicy at all, does not.
  member_domains    = try(jsondecode(data.http.member_domains.response_body).listPolicy, null)
  domain_restricted = local.member_domains != null && try(local.member_domains.allValues, "") != "ALLOW" && length(try(local.member_domains.allowedValues, [])) > 0
}

# Unreadable (no permission, API off): the apply goes on, with this warning to check by hand.
check "member_domains_readable" {
  assert {
    condition     = data.http.member_domains.status_code == 200
    error_message = "Could not read the effective iam.allowedPolicyMemberDomains policy (HTTP ${data.http.member_domains.status_code}); check it by hand (docs/DEPLOY.md, 'Organisation policies')."
  }
}

# Limits that span variables, checked at plan time with the arithmetic above.
resource "terraform_data" "limits" {
  lifecycle {
    precondition {
      condition     = var.model_timeout_s <= local.model_timeout_max
      error_message = "model_timeout_s = ${var.model_timeout_s} does not fit: ${local.lease_wait_s} s lease wait + ${local.quota_wait_s} s quota wait + 2 calls + ${local.worker_overhead_s} s must stay within Pub/Sub's ${local.ack_deadline_max_s} s ack deadline, so model_timeout_s <= ${local.model_timeout_max}."
    }
    precondition {
      condition     = !local.domain_restricted
      error_message = "This project's organisation policy iam.allowedPolicyMemberDomains (domain restricted sharing) refuses allUsers, which the public API and stream functions need: they check a Firebase ID token themselves. Ask for an exception for this project (docs/DEPLOY.md, 'Organisation policies'), then apply again."
    }
    precondition {
      condition     = var.regenerate_schedule != var.maintain_schedule
      error_message = "regenerate_schedule and maintain_schedule must differ: both run on the one regenerate instance."
    }
  }
}

# --- APIs --------------------------------------------------------------------------------------

resource "google_project_service" "this" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtrace.googleapis.com",
    "eventarc.googleapis.com",
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  project = var.project_id
  service = each.value
  # Turning an API off on destroy would break anything else in the project that uses it.
  disable_on_destroy = false
}

# Service agents that are granted roles below exist only after their API's first use on a new
# project; create them now so the grants do not fail (Pub/Sub: push OIDC tokens and dead
# letters; Eventarc: the regenerate trigger).
resource "google_project_service_identity" "agents" {
  provider = google-beta
  for_each = toset(["pubsub.googleapis.com", "eventarc.googleapis.com"])

  project = var.project_id
  service = each.value

  depends_on = [google_project_service.this]
}

# New IAM grants take up to a couple of minutes to be seen everywhere: the first build (as the
# build account) and the first deliveries wait for them.
resource "time_sleep" "iam_propagation" {
  create_duration = "90s"

  depends_on = [
    google_project_iam_member.build,
    google_project_iam_member.build_storage,
    google_project_service_identity.agents,
  ]
}

# --- Secrets -----------------------------------------------------------------------------------

# Only the secret is managed here; its value is added out of band so it never enters the state:
#   printf %s "$KEY" | gcloud secrets versions add gemini-api-key --data-file=-
resource "google_secret_manager_secret" "gemini_api_key" {
  project   = var.project_id
  secret_id = "gemini-api-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

# --- Storage -----------------------------------------------------------------------------------

module "outputs_bucket" {
  source = "../../modules/bucket"

  project_id    = var.project_id
  name          = "${var.project_id}-${local.prefix}-outputs"
  location      = var.region
  force_destroy = !var.deletion_protection
  # Off: outputs are regenerable and must really be gone after their retention; with
  # versioning a lifecycle delete only makes them noncurrent.
  versioning                    = false
  soft_delete_retention_seconds = var.deletion_protection ? 604800 : 0
  delete_after_days             = { "jobs/" = var.output_retention_days }

  # From infra/functions.yaml (may.buckets.outputs): read -> objectViewer, read_write ->
  # objectUser. The stream signs the URLs in its events: a V4 URL opens only what its signer
  # can read.
  members = local.outputs_bucket_members

  # The page fetches sketches by their signed URLs (the URL is the authorisation, no cookies).
  cors_origins = ["*"]
  depends_on   = [google_project_service.this]
}

# Function source zips, named by content hash: only changed code uploads and redeploys, and
# every deployed version stays here to roll back to.
module "sources_bucket" {
  source = "../../modules/bucket"

  project_id    = var.project_id
  name          = "${var.project_id}-${local.prefix}-sources"
  location      = var.region
  force_destroy = !var.deletion_protection
  # A new zip replaces the old object in Terraform; with versioning the old one stays as a
  # noncurrent version to roll back to (docs/DEPLOY.md, "Rolling back").
  versioning                    = true
  noncurrent_versions_kept      = var.source_versions_kept
  soft_delete_retention_seconds = 0

  members = {
    build = { role = "roles/storage.objectViewer", member = google_service_account.build.member }
  }

  depends_on = [google_project_service.this]
}

resource "google_storage_bucket_object" "source" {
  for_each = local.manifest

  bucket       = module.sources_bucket.name
  name         = "functions/${basename(each.value)}"
  source       = "${local.manifest_dir}/${each.value}"
  content_type = "application/zip"
}

# Cloud Build runs as its own account instead of the project default (which new projects no
# longer grant Editor), with the roles Cloud Functions documents for a custom build account.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${local.prefix}-build"
  display_name = "sketchgen function builds"

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# Builds read the staged source and write their cache in the buckets Cloud Functions manages
# (gcf-v2-sources-*, gcf-v2-uploads-*); the condition keeps them out of the outputs bucket.
resource "google_project_iam_member" "build_storage" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = google_service_account.build.member

  condition {
    title       = "gcf-buckets-only"
    description = "Cloud Functions source and upload buckets"
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-\")"
  }
}

# --- Firestore ---------------------------------------------------------------------------------

module "firestore" {
  source = "../../modules/firestore"

  project_id             = var.project_id
  name                   = var.firestore_database
  location               = var.firestore_location
  deletion_protection    = var.deletion_protection
  point_in_time_recovery = var.firestore_pitr
  rules                  = file("${path.module}/../../../../firestore.rules")

  # The queries the service runs (FirestoreJobStore); equality first, then the order.
  indexes = {
    jobs_by_owner = {
      collection = "jobs"
      fields = [
        { field_path = "owner_uid", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    jobs_by_style = {
      collection = "jobs"
      fields = [
        { field_path = "style_id", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    jobs_by_owner_and_style = {
      collection = "jobs"
      fields = [
        { field_path = "owner_uid", order = "ASCENDING" },
        { field_path = "style_id", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    jobs_by_status = {
      collection = "jobs"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
  }

  # Jobs and their idempotency records expire together (both carry the job's expire_at).
  # shards: the deployment ceiling's spend_ceiling/{day}/shards/{i} (docs/decisions/0021).
  ttl_fields = { jobs = "expire_at", idempotency = "expire_at", shards = "expire_at" }

  # User styles (issue 16): a brief's nearest references of one style (FirestoreReferenceIndex:
  # styles/{id}/references, do_not_use == false, embedding_model == current, cosine). The
  # dimension is sketchgen.references.EMBEDDING_DIMENSIONS (tests/deploy checks they agree).
  vector_indexes = {
    style_references = {
      collection   = "references"
      filters      = ["do_not_use", "embedding_model"]
      vector_field = "embedding"
      dimension    = 768
    }
  }
  # The upkeep finds references embedded by another model across every style.
  collection_group_fields = {
    references_by_embedding_model = { collection = "references", field = "embedding_model" }
  }

  depends_on = [google_project_service.this]
}

# --- Pub/Sub -----------------------------------------------------------------------------------

# Pub/Sub signs push requests to the worker as this account; it may invoke the worker only.
resource "google_service_account" "push_invoker" {
  project      = var.project_id
  account_id   = "${local.prefix}-push-invoker"
  display_name = "sketchgen Pub/Sub push to sketch_worker"

  depends_on = [google_project_service.this]
}

# The Pub/Sub service agent mints the OIDC tokens for push and Eventarc deliveries (needed
# explicitly on projects created before April 2021; harmless after).
resource "google_service_account_iam_member" "pubsub_token_creator" {
  for_each = merge(
    { push_invoker = google_service_account.push_invoker.name },
    { for name, _ in local.event_functions : name => module.function[name].service_account_name },
  )

  service_account_id = each.value
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_project_service_identity.agents["pubsub.googleapis.com"].member
}

locals {
  # Pub/Sub counts every answer but a 2xx as a failed delivery: a 429 from Cloud Run when the
  # worker's instances are all busy too, and the subscription has no setting to leave a status
  # out of that count (dead_letter_policy.max_delivery_attempts is 5-100 "NACKs"; docs/DEPLOY.md,
  # "Deliveries and dead letters"). So the worker counts the draws it really made itself
  # (SKETCHGEN_MAX_DELIVERIES = var.max_delivery_attempts, in the sketch's document) and fails the
  # sketch after them, while the subscription's limit is left room for refused pushes: four
  # times as many attempts, at most Pub/Sub's 100.
  subscription_delivery_attempts = min(100, 4 * var.max_delivery_attempts)
}

module "sketch_topic" {
  source = "../../modules/pubsub"

  project_id     = var.project_id
  project_number = data.google_project.this.number
  name           = "${local.prefix}-sketch"

  publishers = local.publishers["sketch"]

  push = {
    subscription_name          = "${local.prefix}-sketch-worker"
    endpoint                   = module.function[local.push_function].uri # run.app: what internal ingress accepts
    oidc_service_account_email = google_service_account.push_invoker.email
    ack_deadline_seconds       = local.ack_deadline_s
    # A refused delivery (no model slot in time, a transient failure) comes back after this
    # backoff, doubling: the queue spaces quota refusals out (docs/decisions/0055).
    minimum_backoff       = "${local.delivery.minimum_backoff_s}s"
    maximum_backoff       = "${local.delivery.maximum_backoff_s}s"
    max_delivery_attempts = local.subscription_delivery_attempts
    # Dead letters go back to the worker, which ends their sketch as failed with the reason.
    dead_letter_endpoint = "${module.function[local.push_function].uri}${local.definition.functions[local.push_function].trigger.dead_letter_path}"
  }

  dead_letter_retention = var.dead_letter_retention

  depends_on = [google_project_service.this, google_project_service_identity.agents]
}

module "regenerate_topic" {
  source = "../../modules/pubsub"

  project_id     = var.project_id
  project_number = data.google_project.this.number
  name           = "${local.prefix}-regenerate"
  publishers     = local.publishers["regenerate"]

  depends_on = [google_project_service.this]
}

# One nightly job per style to refresh (sketchgen.api.push.RegenerateMessage needs a style_id
# or job_ids): re-runs that style's saved jobs, through the Batch API when regenerate_batch.
resource "google_cloud_scheduler_job" "regenerate" {
  for_each = toset(var.regenerate_styles)

  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-regenerate-${each.value}"
  description = "Re-runs saved jobs of style ${each.value} (functions/generate: regenerate)."
  schedule    = var.regenerate_schedule
  time_zone   = var.regenerate_time_zone

  pubsub_target {
    topic_name = module.regenerate_topic.topic_id
    data = base64encode(jsonencode({
      style_id = each.value
      limit    = var.regenerate_limit
      batch    = var.regenerate_batch
    }))
  }

  depends_on = [google_project_service.this]
}

# Upkeep every few minutes: stores ended Batch API results, re-queues lost sketches, ends
# jobs past their deadline (SketchService.collect_batches and sweep).
resource "google_cloud_scheduler_job" "maintain" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-maintain"
  description = "Collects ended Gemini batches and sweeps stuck jobs (regenerate, action maintain)."
  schedule    = var.maintain_schedule
  time_zone   = var.regenerate_time_zone

  pubsub_target {
    topic_name = module.regenerate_topic.topic_id
    data       = base64encode(jsonencode({ action = "maintain" }))
  }

  depends_on = [google_project_service.this]
}

# --- Functions ---------------------------------------------------------------------------------

# Every function in infra/functions.yaml, with its own service account and only what its
# grants say. Public HTTP functions verify a Firebase ID token on every request themselves:
# Cloud Run IAM in front of them would reject browsers and phones, which hold Firebase tokens,
# not Google OIDC tokens.
module "function" {
  #checkov:skip=CKV_GCP_124:The public API and SSE endpoint verify a Firebase ID token (and the job owner) on every request; see public_invoker.
  for_each = local.definition.functions
  source   = "../../modules/function"

  project_id  = var.project_id
  region      = var.region
  name        = local.function_names[each.key]
  description = each.value.description
  # Account ids kept from before the definition existed: sketchgen-worker, not -sketch-worker.
  service_account_id    = "${local.prefix}-${replace(replace(each.key, "sketch_", ""), "_", "-")}"
  entry_point           = each.value.entry_point
  runtime               = var.runtime
  source_bucket         = module.sources_bucket.name
  source_object         = google_storage_bucket_object.source[each.value.source].name
  build_service_account = google_service_account.build.id

  environment        = local.functions[each.key].environment
  secret_environment = local.functions[each.key].secrets
  project_roles      = local.functions[each.key].project_roles

  ingress         = local.functions[each.key].public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
  public_invoker  = local.functions[each.key].public
  invoker_members = each.value.trigger.type == "push" ? { push = google_service_account.push_invoker.member } : {}
  event_trigger = each.value.trigger.type != "event" ? null : {
    event_type   = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic = local.topic_ids[each.value.trigger.topic]
    # Retried when the one instance is busy (a run in progress): runs are idempotent per
    # message id, and a malformed message is acknowledged, not retried (api/push.py).
    retry = true
  }

  min_instances   = local.sizing[each.key].min_instances
  max_instances   = local.sizing[each.key].max_instances
  concurrency     = local.sizing[each.key].concurrency
  cpu             = "1"
  memory          = local.sizing[each.key].memory
  timeout_seconds = local.sizing[each.key].timeout_seconds

  depends_on = [google_project_service.this, time_sleep.iam_propagation, terraform_data.limits]
}

# Signed URLs are V4 signatures made through IAM signBlob as the function's own account
# (may.sign_urls in the definition).
resource "google_service_account_iam_member" "signs_urls" {
  for_each = local.url_signers

  service_account_id = module.function[each.key].service_account_name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = module.function[each.key].service_account_member
}

# The functions had a module each before infra/functions.yaml; their state moves, nothing is
# recreated.
moved {
  from = module.generate
  to   = module.function["generate"]
}

moved {
  from = module.sketch_worker
  to   = module.function["sketch_worker"]
}

moved {
  from = module.stream
  to   = module.function["stream"]
}

moved {
  from = module.regenerate
  to   = module.function["regenerate"]
}

moved {
  from = google_service_account_iam_member.generate_signs_urls
  to   = google_service_account_iam_member.signs_urls["generate"]
}

moved {
  from = google_service_account_iam_member.stream_signs_urls
  to   = google_service_account_iam_member.signs_urls["stream"]
}

# --- spend: a Cloud Billing budget on the project (only when a billing account is given) -----
# Per-user limits are enforced by the service (docs/decisions/0012); this is the backstop a
# person sees: billing admins get an email at each threshold of the month's spend. A budget
# alerts, it does not stop spending.

resource "google_billing_budget" "project" {
  count           = var.billing_account != "" ? 1 : 0
  billing_account = var.billing_account
  display_name    = "${local.prefix}-${var.environment}"

  budget_filter {
    projects = ["projects/${data.google_project.this.number}"]
  }

  amount {
    specified_amount {
      currency_code = "USD"
      units         = tostring(var.budget_amount_usd)
    }
  }

  dynamic "threshold_rules" {
    for_each = var.budget_alert_thresholds
    content {
      threshold_percent = threshold_rules.value
    }
  }

  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  depends_on = [google_project_service.this]
}
