"""Deploying: pure plans, the per-workload lock, the queue, workers, health checks, reconcile."""
