"""Moorage: a self-hosted control plane for container workloads on one Docker host."""

__version__ = "0.1.0"
