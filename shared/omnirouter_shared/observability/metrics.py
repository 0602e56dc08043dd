"""The closed set of metrics every service exposes about its Kafka plumbing and HTTP edge.

Service-specific metrics live in each service's own ``metrics.py``; all names start with ``omni_``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENTS_PRODUCED = Counter("omni_events_produced_total", "Events acknowledged by the broker", ["topic"])
PRODUCE_FAILURES = Counter("omni_produce_failures_total", "Produce calls that failed or timed out", ["topic"])
PRODUCE_LATENCY = Histogram(
    "omni_produce_latency_seconds", "Time from produce to broker ack", ["topic"], buckets=LATENCY_BUCKETS
)
EVENTS_CONSUMED = Counter("omni_events_consumed_total", "Events handled by a consumer", ["group", "topic"])
EVENTS_DEAD_LETTERED = Counter(
    "omni_events_dead_lettered_total", "Poison messages sent to the dead-letter topic", ["group", "topic"]
)
HANDLER_FAILURES = Counter(
    "omni_consumer_handler_failures_total", "Batches that failed transiently and were retried", ["group"]
)
BATCH_LATENCY = Histogram(
    "omni_consumer_batch_seconds",
    "Time to handle one batch, commit included",
    ["group"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "omni_consumer_lag", "Messages behind the partition end", ["group", "topic", "partition"]
)
CONSUMER_ASSIGNED = Gauge("omni_consumer_assigned_partitions", "Partitions currently assigned", ["group"])
HTTP_REQUESTS = Counter(
    "omni_http_requests_total", "HTTP requests by route and status", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "omni_http_request_seconds", "HTTP request latency", ["route", "method"], buckets=LATENCY_BUCKETS
)
READY = Gauge("omni_ready", "1 when the service reports ready", ["service"])
