"""Bad input fails observe() with a PluginError whose message says which URL, which request
and what was wrong, and never shows a secret; the core turns it into Unknown, never into
"all clear"."""

from __future__ import annotations

import json

import httpx
import pytest

from aiops.subjects import registry
from aiops.subjects.contract import PluginError
from aiops.subjects.metrics import Prometheus
from tests.fixtures.tikv_plugin import MakePlugin
from tests.unit.tikv.fakepd import FakePd, StubPrometheus

JSON = {"content-type": "application/json; charset=UTF-8"}


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


async def test_pd_unreachable_names_the_url(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    pd.fault = refuse
    with pytest.raises(PluginError) as err:
        await make_plugin(pd).observe()
    message = str(err.value)
    assert f"{pd.url} unreachable" in message
    assert "Connection refused" in message
    assert "/pd/api/v1/stores" in message


async def test_pd_answering_html_is_not_json(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    pd.fault = lambda r: httpx.Response(
        200, html="<html><body><h1>502 Bad Gateway</h1></body></html>"
    )
    with pytest.raises(PluginError, match=r"not JSON \(text/html.*502 Bad Gateway"):
        await make_plugin(pd).observe()


async def test_pd_error_status_shows_the_start_of_its_body(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    pd.fault = lambda r: httpx.Response(
        500, json="[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped"
    )
    with pytest.raises(PluginError, match=r"HTTP 500: .*not bootstrapped"):
        await make_plugin(pd).observe()


async def test_a_store_missing_its_id_is_an_error_not_a_guess(make_plugin: MakePlugin) -> None:
    with pytest.raises(PluginError) as err:
        await make_plugin(FakePd(stores="stores_missing_id.json")).observe()
    assert "GET /pd/api/v1/stores with JSON that is not PD's store list" in str(err.value)
    assert "stores.1.store.id: Field required" in str(err.value)


@pytest.mark.parametrize("body", [None, [], {"stores": "all of them"}, "OK"])
async def test_json_of_the_wrong_shape_is_refused(make_plugin: MakePlugin, body: object) -> None:
    pd = FakePd()
    content = json.dumps(body).encode()
    pd.fault = lambda r: (
        httpx.Response(200, content=content, headers=JSON)
        if r.url.path.endswith("/stores")
        else None
    )
    with pytest.raises(PluginError, match="not PD's store list"):
        await make_plugin(pd).observe()


async def test_garbage_in_a_region_check_names_the_check(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    pd.fault = lambda r: (
        httpx.Response(200, json={"count": "many"})
        if r.url.path.endswith("/pending-peer")
        else None
    )
    with pytest.raises(PluginError, match="not PD's pending-peer region list: count"):
        await make_plugin(pd).observe()


async def test_reads_fail_over_to_the_next_pd(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    dead = "http://pd-dead.tikv.svc:2379"
    pd.fault = lambda r: refuse(r) if r.url.host == "pd-dead.tikv.svc" else None
    plugin = make_plugin(pd, pdUrls=[dead, pd.url])
    obs = await plugin.observe()
    assert len(obs.members) == 3


async def test_credentials_in_a_pd_url_never_reach_the_message(make_plugin: MakePlugin) -> None:
    pd = FakePd()
    pd.fault = refuse
    secret_url = "http://admin:hunter2-secret@pd.tikv.svc:2379"
    with pytest.raises(PluginError) as err:
        await make_plugin(pd, pdUrls=[secret_url]).observe()
    assert "hunter2" not in str(err.value)
    assert "http://***@pd.tikv.svc:2379 unreachable" in str(err.value)


async def test_prometheus_answering_garbage_names_the_query(
    make_plugin: MakePlugin, prom: StubPrometheus
) -> None:
    prom.raw = (200, "text/html", b"<html>login required</html>")
    with pytest.raises(PluginError) as err:
        await make_plugin(FakePd()).observe()
    message = str(err.value)
    assert "from Prometheus" in message
    assert prom.url in message


async def test_credentials_in_the_prometheus_url_are_masked(
    make_plugin: MakePlugin, prom: StubPrometheus
) -> None:
    prom.raw = (200, "text/html", b"<html>login required</html>")
    plugin = make_plugin(FakePd())
    secret = prom.url.replace("http://", "http://scraper:hunter2-secret@")
    plugin.ctx.prometheus = Prometheus(secret, timeout=2)
    with pytest.raises(PluginError) as err:
        await plugin.observe()
    assert "hunter2" not in str(err.value)
    assert "//***@127.0.0.1" in str(err.value)


async def test_prometheus_with_a_malformed_sample(
    make_plugin: MakePlugin, prom: StubPrometheus
) -> None:
    body = (
        b'{"status":"success","data":{"resultType":"vector","result":'
        b'[{"metric":{"instance":"x:20180"},"value":[1,"fast"]}]}}'
    )
    prom.raw = (200, "application/json", body)
    with pytest.raises(PluginError, match="malformed sample"):
        await make_plugin(FakePd()).observe()


async def test_prometheus_unreachable(make_plugin: MakePlugin, prom: StubPrometheus) -> None:
    plugin = make_plugin(FakePd())
    assert plugin.ctx.prometheus is not None
    plugin.ctx.prometheus = Prometheus("http://127.0.0.1:9", timeout=1)
    with pytest.raises(PluginError, match=r"cannot read TiKV .* from Prometheus.*127\.0\.0\.1:9"):
        await plugin.observe()


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({}, "pdUrls: Field required"),
        ({"pdUrls": []}, "pdUrls: List should have at least 1 item"),
        ({"pdUrls": ["pd:2379"]}, "pdUrls.0"),
        ({"pdUrls": ["http://pd:2379"], "statusPort": 20160}, "20160 is TiKV's gRPC port"),
        ({"pdUrls": ["http://pd:2379"], "prometheusJob": 'tikv"} or vector(1'}, "prometheusJob"),
        ({"pdUrls": ["http://pd:2379"], "memberPattern": "^[^.]+"}, "named group 'member'"),
        ({"pdUrls": ["http://pd:2379"], "pdURL": "http://pd:2379"}, "pdURL: Extra inputs"),
    ],
)
def test_a_bad_config_is_refused_with_the_field(config: dict[str, object], complaint: str) -> None:
    with pytest.raises(registry.InvalidConfig, match=r"spec\.config rejected by tikv") as err:
        registry.validate_config(registry.load("tikv"), config)
    assert complaint in str(err.value)


def test_the_defaults_point_at_the_status_port() -> None:
    cfg = registry.validate_config(registry.load("tikv"), {"pdUrls": ["http://pd:2379"]})
    assert cfg.model_dump()["status_port"] == 20180
