"""Every PromQL string the plugin sends, in one place, so a test can run each of them through a
real Prometheus.

All of them select TiKV on its status port: the scrape job from the config and an `instance`
ending in the status port (20180 by default). The original system queried the gRPC port
(20160), which serves no metrics, so its latency invariant could never fire; the port in the
selector makes a mis-scraped TiKV show up as `metrics_missing`, not as silence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tikv_subject.config import TikvConfig


@dataclass(frozen=True)
class Queries:
    grpc_p99_seconds: str
    """p99 of TiKV's gRPC message handling time per store (kv_gc is background work)."""
    scrape_up: str
    """1 per store whose status port Prometheus scraped successfully last time."""

    def all(self) -> dict[str, str]:
        return asdict(self)


def selector(cfg: TikvConfig) -> str:
    return f'job="{cfg.prometheus_job}", instance=~".+:{cfg.status_port}"'


def build(cfg: TikvConfig) -> Queries:
    sel = selector(cfg)
    by = cfg.store_label
    return Queries(
        grpc_p99_seconds=(
            f"histogram_quantile(0.99, sum by ({by}, le) ("
            f'rate(tikv_grpc_msg_duration_seconds_bucket{{{sel}, type!="kv_gc"}}'
            f"[{cfg.latency_window}])))"
        ),
        scrape_up=f"max by ({by}) (up{{{sel}}})",
    )
