"""channel-gateway metrics (the Kafka and HTTP ones are in omnirouter_shared.observability.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from omnirouter_shared.observability.metrics import LATENCY_BUCKETS

WEBHOOKS = Counter(
    "omni_gateway_webhooks_total",
    "Webhooks answered, by vendor endpoint, outcome (accepted, duplicate, refused, unavailable) and reason",
    ["vendor", "outcome", "reason"],
)
EVENTS = Counter(
    "omni_gateway_events_total",
    "Vendor messages and statuses seen, by vendor endpoint and outcome (published, duplicate)",
    ["vendor", "outcome"],
)
INTAKE_LATENCY = Histogram(
    "omni_gateway_intake_seconds",
    "From the request's arrival to the answer, for accepted webhooks",
    ["vendor"],
    buckets=LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "omni_gateway_deliveries_total",
    "Outbound replies by channel and final state (sent, failed, refused_opt_out, dead_lettered)",
    ["channel", "state"],
)
DELIVERY_ATTEMPTS = Counter(
    "omni_gateway_delivery_attempts_total",
    "Calls to vendors' send APIs, by vendor and result (ok, retry, permanent)",
    ["vendor", "result"],
)
