"""Deploying: the per-workload lock, the queue, workers, the trigger runner, reconcile."""
