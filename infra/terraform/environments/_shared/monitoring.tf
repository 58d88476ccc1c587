# What an operator watches (docs/decisions/0030, docs/DEPLOY.md "Watching it"): a Cloud
# Monitoring dashboard and the alert policies, on the functions' own metrics (OpenTelemetry,
# SKETCHGEN_TELEMETRY = cloud: workload.googleapis.com/sketchgen.*, one series per instance on
# the generic_task resource) and on what Google measures itself (Cloud Run requests, Pub/Sub
# dead letters). Alerts notify var.notification_channels (none: they open incidents only).

locals {
  workload = "resource.type = \"generic_task\" AND metric.type = \"workload.googleapis.com"
  metric = {
    time_to_done   = "${local.workload}/sketchgen.job.time_to_done\""
    sketches       = "${local.workload}/sketchgen.sketches\""
    model_latency  = "${local.workload}/sketchgen.model.latency\""
    quota_wait     = "${local.workload}/sketchgen.quota.wait\""
    cost           = "${local.workload}/sketchgen.cost\""
    dead_letters   = "${local.workload}/sketchgen.dead_letters\""
    holds_given_up = "${local.workload}/sketchgen.holds.given_up\""
    streams        = "${local.workload}/sketchgen.streams.active\""
  }
  # The functions' Cloud Run services (gen2 functions are Cloud Run services of the same name).
  run_requests = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND resource.label.service_name = monitoring.regex.full_match(\"${local.prefix}-.*\")"
  dead_letter_count = join(" AND ", [
    "resource.type = \"pubsub_subscription\"",
    "metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\"",
    "resource.label.subscription_id = \"${module.sketch_topic.subscription_name}\"",
  ])
}

# The service's metric descriptors, declared as the exporter declares them at its first write
# (opentelemetry-exporter-gcp-monitoring: display name = name, labels = the attributes, string;
# recreating an identical descriptor is a no-op for it). Cloud Monitoring refuses an alert
# policy on a metric type that does not exist yet (404 "Cannot find metric(s)"), and on a new
# project no function has written one: so they exist before the policies. tests/deploy checks
# them against sketchgen.telemetry.Instruments.
locals {
  metric_descriptors = {
    "sketchgen.job.time_to_done" = { kind = "CUMULATIVE", value = "DISTRIBUTION", unit = "s", labels = ["model", "status"], description = "From submission to the job's final status (by model and status)." }
    "sketchgen.sketches"         = { kind = "CUMULATIVE", value = "INT64", unit = "{sketch}", labels = ["model", "status"], description = "Sketches ended, by model and status (ok, failed, cancelled)." }
    "sketchgen.model.latency"    = { kind = "CUMULATIVE", value = "DISTRIBUTION", unit = "s", labels = ["model", "finish_reason"], description = "One model call, by model and finish reason." }
    "sketchgen.quota.wait"       = { kind = "CUMULATIVE", value = "DISTRIBUTION", unit = "s", labels = ["model", "outcome"], description = "Time a delivery waited for a model slot, by model and outcome." }
    "sketchgen.cost"             = { kind = "CUMULATIVE", value = "DOUBLE", unit = "{USD}", labels = ["model", "user_id"], description = "What sketches cost, by user and model (counted when the job ends)." }
    "sketchgen.dead_letters"     = { kind = "CUMULATIVE", value = "INT64", unit = "{delivery}", labels = [], description = "Sketch messages Pub/Sub gave up on (dead-letter deliveries)." }
    "sketchgen.holds.given_up"   = { kind = "CUMULATIVE", value = "INT64", unit = "{delivery}", labels = [], description = "Deliveries whose work ran past the delivery's budget (a hung call or slot wait): the sketch was released for the next delivery." }
    "sketchgen.streams.active"   = { kind = "GAUGE", value = "INT64", unit = "{stream}", labels = [], description = "Event streams open in this instance." }
  }
}

resource "google_monitoring_metric_descriptor" "sketchgen" {
  for_each = local.metric_descriptors

  type         = "workload.googleapis.com/${each.key}"
  display_name = each.key
  description  = each.value.description
  metric_kind  = each.value.kind
  value_type   = each.value.value
  unit         = each.value.unit

  dynamic "labels" {
    for_each = each.value.labels
    content {
      key        = labels.value
      value_type = "STRING"
    }
  }

  depends_on = [google_project_service.this]
}

# A new metric type can take a few minutes to be usable in a policy.
resource "time_sleep" "metric_descriptors" {
  create_duration = "120s"
  triggers        = { types = join(",", sort(keys(local.metric_descriptors))) }
  depends_on      = [google_monitoring_metric_descriptor.sketchgen]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "${local.prefix}-${var.environment}: sketches dead-lettered"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "ERROR"

  conditions {
    display_name = "Messages moved to the dead-letter topic > 0"
    condition_threshold {
      filter          = local.dead_letter_count
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A sketch message failed every delivery and went to the dead-letter topic; the worker marked its sketch failed. Read the worker's logs for the job (the trace in Cloud Trace links them) and the dead letters: `gcloud pubsub subscriptions pull ${module.sketch_topic.dead_letter_subscription_name} --limit 10` (docs/DEPLOY.md, 'Dead letters')."
  }

  depends_on = [google_project_service.this, time_sleep.metric_descriptors]
}

resource "google_monitoring_alert_policy" "errors" {
  display_name          = "${local.prefix}-${var.environment}: 5xx or failed sketches"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "ERROR"

  conditions {
    display_name = "5xx share of the functions' requests > ${var.error_ratio_threshold}"
    condition_threshold {
      filter             = "${local.run_requests} AND metric.label.response_code_class = \"5xx\""
      denominator_filter = local.run_requests
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_ratio_threshold
      duration           = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  conditions {
    display_name = "Failed share of ended sketches > ${var.error_ratio_threshold}"
    condition_threshold {
      filter             = "${local.metric.sketches} AND metric.label.status = \"failed\""
      denominator_filter = local.metric.sketches
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_ratio_threshold
      duration           = "600s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The API or the stream answer 5xx, or sketches fail. Open Cloud Trace for a failing job (span status ERROR), then its logs (View logs on the span)."
  }

  depends_on = [google_project_service.this, time_sleep.metric_descriptors]
}

resource "google_monitoring_alert_policy" "holds_given_up" {
  display_name          = "${local.prefix}-${var.environment}: a worker's call hung"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "WARNING"

  conditions {
    display_name = "Deliveries given up after the delivery's budget > 0"
    condition_threshold {
      filter          = local.metric.holds_given_up
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A worker's model call or model-slot wait ran past the delivery's budget (hold_max_s, docs/decisions/0073): the worker released the sketch and the next delivery drew it, so the job still ends. The stuck thread keeps the instance busy until it returns. Read the worker's warning for the job and sketch ('still runs after'), and the model's latency on the dashboard: repeated hangs point at the model endpoint or the network."
  }

  depends_on = [google_project_service.this, time_sleep.metric_descriptors]
}

resource "google_monitoring_alert_policy" "time_to_done" {
  display_name          = "${local.prefix}-${var.environment}: p99 time to done"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "WARNING"

  conditions {
    display_name = "p99 job time to done > ${var.time_to_done_p99_s} s"
    condition_threshold {
      filter          = local.metric.time_to_done
      comparison      = "COMPARISON_GT"
      threshold_value = var.time_to_done_p99_s
      duration        = "900s"
      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_99"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Jobs take long to finish. Compare quota wait (sketchgen.quota.wait) with model latency (sketchgen.model.latency) on the dashboard: waiting for model slots means the gemini_rpm quota is the limit; slow calls mean the model is."
  }

  depends_on = [google_project_service.this, time_sleep.metric_descriptors]
}

resource "google_monitoring_alert_policy" "daily_spend" {
  # The deployment's ceiling refuses work past it (SKETCHGEN_DEPLOYMENT_DAILY_USD); this warns
  # before it is reached. No ceiling, no alert.
  count                 = var.deployment_daily_usd == null ? 0 : 1
  display_name          = "${local.prefix}-${var.environment}: spend over ${var.spend_alert_fraction * 100}% of the daily ceiling"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "CRITICAL"

  conditions {
    display_name = "Model spend over the last 24 h > ${var.spend_alert_fraction} x ${coalesce(var.deployment_daily_usd, 0)} USD"
    condition_threshold {
      filter          = local.metric.cost
      comparison      = "COMPARISON_GT"
      threshold_value = var.spend_alert_fraction * coalesce(var.deployment_daily_usd, 0)
      duration        = "0s"
      # A rolling 24 h sum (the longest alignment period an alert evaluates), not the UTC day
      # the per-user budgets count in.
      aggregations {
        alignment_period     = "86400s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Model spend is near the deployment's daily ceiling. The dashboard's cost by user shows who; `sketchgen usage UID` and `sketchgen accounts set UID` (docs/DEPLOY.md, 'Spend') adjust a user's limits."
  }

  depends_on = [google_project_service.this, time_sleep.metric_descriptors]
}

resource "google_monitoring_dashboard" "sketchgen" {
  dashboard_json = jsonencode({
    displayName = "${local.prefix}-${var.environment}"
    mosaicLayout = {
      columns = 48
      tiles = [for i, widget in [
        {
          title = "Job time to done (p50, p99)"
          xyChart = { dataSets = [for p in ["50", "99"] : {
            plotType = "LINE"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = local.metric.time_to_done
              aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${p}" }
            } }
          }] }
        },
        {
          title = "Model call latency p95 by model and finish reason"
          xyChart = { dataSets = [{
            plotType = "LINE"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = local.metric.model_latency
              aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_95", groupByFields = ["metric.label.model", "metric.label.finish_reason"] }
            } }
          }] }
        },
        {
          title = "Quota wait p95 by model and outcome"
          xyChart = { dataSets = [{
            plotType = "LINE"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = local.metric.quota_wait
              aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_95", groupByFields = ["metric.label.model", "metric.label.outcome"] }
            } }
          }] }
        },
        {
          title = "Cost (USD per hour) by model"
          xyChart = { dataSets = [{
            plotType = "STACKED_BAR"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = local.metric.cost
              aggregation = { alignmentPeriod = "3600s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.model"] }
            } }
          }] }
        },
        {
          title = "Cost (USD per day), top users"
          xyChart = { dataSets = [{
            plotType = "STACKED_BAR"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter               = local.metric.cost
                aggregation          = { alignmentPeriod = "86400s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.user_id"] }
                pickTimeSeriesFilter = { rankingMethod = "METHOD_MAX", numTimeSeries = 10, direction = "TOP" }
              }
            }
          }] }
        },
        {
          title = "Sketches ended by status"
          xyChart = { dataSets = [{
            plotType = "STACKED_BAR"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = local.metric.sketches
              aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.status"] }
            } }
          }] }
        },
        {
          title = "Dead letters (Pub/Sub, and as the worker saw them)"
          xyChart = { dataSets = [
            {
              plotType = "STACKED_BAR"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = local.dead_letter_count
                aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM" }
              } }
            },
            {
              plotType = "LINE"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = local.metric.dead_letters
                aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM" }
              } }
            },
          ] }
        },
        {
          title = "Open event streams"
          xyChart = { dataSets = [{
            plotType = "LINE"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = local.metric.streams
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MEAN", crossSeriesReducer = "REDUCE_SUM" }
            } }
          }] }
        },
        {
          title = "Requests by function and response class"
          xyChart = { dataSets = [{
            plotType = "STACKED_BAR"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = local.run_requests
              aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.service_name", "metric.label.response_code_class"] }
            } }
          }] }
        },
        ] : {
        xPos   = (i % 2) * 24
        yPos   = floor(i / 2) * 16
        width  = 24
        height = 16
        widget = widget
      }]
    }
  })

  depends_on = [google_project_service.this, time_sleep.metric_descriptors]
}
