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
BACKGROUND_PAUSED = Counter(
    "moorage_background_paused_seconds",
    "Time the deploy workers and reconcile waited for webhook deliveries to answer "
    "(store/priority.py)",
)
LOOP_PAUSED = Counter(
    "moorage_event_loop_paused_seconds",
    "Time the API's event loop stepped aside for webhook deliveries (store/priority.py)",
)
PACED = Counter(
    "moorage_paced_requests",
    "Requests without a login past their address's budget (api/pacing.py): refused with "
    "429, or held unread until the address has a token again",
    ["outcome"],
)
HOOK_DELIVERIES = Counter("moorage_hook_deliveries", "Webhook calls by outcome", ["outcome"])
OFFSITE_STALE = Gauge(
    "moorage_offsite_stale",
    "1 when a ready snapshot of the workload has no verified off-site copy on the policy's "
    "target within the policy's window (SPEC section 11)",
    ["workload", "target"],
)
OFFSITE_COPIES = Counter("moorage_offsite_copies", "Off-site copies by result", ["result"])
OFFSITE_BYTES = Counter("moorage_offsite_bytes", "Ciphertext bytes of verified off-site copies")
INSTANCE_BACKUPS = Counter(
    "moorage_instance_backups", "Scheduled instance backups by result", ["result"]
)
INSTANCE_BACKUP_LAST = Gauge(
    "moorage_instance_backup_last_success_timestamp_seconds",
    "When the last scheduled instance backup to the target verified (Unix time; SPEC 11)",
    ["target"],
)
CERT_EXPIRY_DAYS = Gauge(
    "moorage_certificate_expiry_days",
    "Days until the certificate the proxy serves for the domain expires (SPEC section 12)",
    ["host"],
)
