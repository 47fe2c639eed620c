"""The TiKV subject plugin: stores, regions and schedulers from PD's HTTP API, latency from
Prometheus scraping TiKV's status port (20180, never the gRPC port 20160)."""
