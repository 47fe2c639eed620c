"""The rate limiter subject plugin: nodes from the admin API and their /health, latency from
Prometheus (per node_id), and counters held against Redis itself (read-only)."""
