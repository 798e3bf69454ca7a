"""Figures the broker reports: Prometheus metrics and the runtime info admin tools read."""
