"""The local stack's generated files: stable program names, everything on loopback, every
port derived from the base, the nodes behind toxiproxy, Prometheus labelling by node."""

from __future__ import annotations

import configparser
import json
import shlex
from pathlib import Path

import pytest

from ratelimiter.localstack.ports import PORT_SPAN, StackPorts
from ratelimiter.localstack.render import (
    StackSpec,
    prometheus_yml,
    supervisord_conf,
    toxiproxy_json,
)


def spec(tmp_path: Path, base: int = 30000, **options: object) -> StackSpec:
    return StackSpec(
        directory=tmp_path,
        base_port=base,
        python=Path("/venv/bin/python"),
        redis_server=Path("/usr/bin/redis-server"),
        toxiproxy_server=Path("/tools/toxiproxy-server"),
        prometheus=Path("/usr/bin/prometheus"),
        **options,
    )


def parse(conf: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(conf)
    return parser


def test_programs_have_stable_names_and_nodes_reach_redis_through_toxiproxy(
    tmp_path: Path,
) -> None:
    s = spec(tmp_path)
    conf = parse(supervisord_conf(s))
    programs = sorted(x.removeprefix("program:") for x in conf.sections() if "program:" in x)
    assert programs == [
        "loadgen",
        "prometheus",
        "redis",
        "rl-node-1",
        "rl-node-2",
        "rl-node-3",
        "toxiproxy",
    ]
    assert conf.get("inet_http_server", "port") == "127.0.0.1:30000"
    assert conf.get("program:loadgen", "autostart") == "false"
    assert conf.get("program:rl-node-2", "autorestart") == "false"
    env = conf.get("program:rl-node-2", "environment")
    assert 'RL_REDIS_URL="redis://127.0.0.1:30003/0"' in env  # toxiproxy's listener
    assert 'RL_PORT="30006"' in env and 'RL_NODE_ID="rl-node-2"' in env
    redis_cmd = shlex.split(conf.get("program:redis", "command"))
    assert redis_cmd[redis_cmd.index("--port") + 1] == "30001"
    assert redis_cmd[redis_cmd.index("--bind") + 1] == "127.0.0.1"
    assert redis_cmd[redis_cmd.index("--save") + 1] == ""
    proxy = json.loads(toxiproxy_json(s))
    assert proxy == [
        {
            "name": "redis",
            "listen": "127.0.0.1:30003",
            "upstream": "127.0.0.1:30001",
            "enabled": True,
        }
    ]


def test_autorestart_is_an_option(tmp_path: Path) -> None:
    conf = parse(supervisord_conf(spec(tmp_path, autorestart=True)))
    assert conf.get("program:rl-node-1", "autorestart") == "unexpected"


def test_prometheus_scrapes_each_node_with_its_node_id(tmp_path: Path) -> None:
    config = json.loads(prometheus_yml(spec(tmp_path, scrape_interval_s=0.5)))
    job = config["scrape_configs"][0]
    assert job["scrape_interval"] == "0.5s" and job["scrape_timeout"] == "0.5s"
    assert job["honor_labels"] is True
    assert [(t["targets"], t["labels"]) for t in job["static_configs"]] == [
        (["127.0.0.1:30005"], {"node_id": "rl-node-1"}),
        (["127.0.0.1:30006"], {"node_id": "rl-node-2"}),
        (["127.0.0.1:30007"], {"node_id": "rl-node-3"}),
    ]


def test_percent_in_paths_is_escaped_for_supervisord(tmp_path: Path) -> None:
    odd = tmp_path / "100%"
    conf = supervisord_conf(spec(odd))
    assert "100%%" in conf and "100%/" not in conf.replace("100%%", "")


def test_ports_stay_inside_the_span_and_two_bases_do_not_overlap() -> None:
    a, b = StackPorts(30000), StackPorts(30000 + PORT_SPAN)
    ports_a, ports_b = set(a.roles().values()), set(b.roles().values())
    assert len(ports_a) == len(a.roles()) == 8
    assert all(30000 <= p < 30000 + PORT_SPAN for p in ports_a)
    assert not ports_a & ports_b
    with pytest.raises(ValueError):
        StackPorts(80)
