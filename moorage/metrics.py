"""Prometheus metrics: defined here once, observed where the work happens, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SNAPSHOT_BYTES = Counter(
    "moorage_snapshot_capture_bytes", "Volume bytes read into snapshot archives"
)
SNAPSHOT_SECONDS = Histogram(
    "moorage_snapshot_capture_seconds",
    "Time to capture one snapshot, quiesce included",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400),
)
SNAPSHOT_RESULTS = Counter("moorage_snapshot_captures", "Snapshot captures by result", ["result"])
DEPLOYMENTS = Counter("moorage_deployments", "Finished deployments by status", ["status"])
HOOK_DELIVERIES = Counter("moorage_hook_deliveries", "Webhook calls by outcome", ["outcome"])
CERT_EXPIRY_DAYS = Gauge(
    "moorage_certificate_expiry_days",
    "Days until the certificate the proxy serves for the domain expires (SPEC section 12)",
    ["host"],
)
