"""The daemon: scheduler, Prometheus metrics, the embedded broker for local runs."""
