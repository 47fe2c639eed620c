"""Bad input fails observe() with a PluginError whose message says which URL, which request
and what was wrong, within its time bound, and never shows a secret; the core turns it into
Unknown, never into "all clear". PD is the stand-in on real sockets, so hangs, trickles,
bodies cut short and huge bodies are real ones."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from aiops.subjects import registry
from aiops.subjects.contract import PluginError
from aiops.subjects.metrics import Prometheus
from tests.fixtures.pd_standin import FIXTURES_PD, PdStandIn, many_regions, region, region_list
from tests.fixtures.tikv_doubles import StubPrometheus
from tests.fixtures.tikv_plugin import MakePlugin
from tikv_subject.pd import PdClient

# A short bound per request keeps these tests quick; the plugin's default is 3 s.
FAST: dict[str, Any] = {"requestTimeoutSeconds": 1.0}


def stores_body(standin: PdStandIn) -> bytes:
    return httpx.get(f"{standin.urls[0]}/pd/api/v1/stores?state=0&state=1&state=2").content


# Loose enough for a loaded CI machine; what they guard against took minutes (a trickle) or
# never ended.
BOUND = 15.0


async def fails(
    make_plugin: MakePlugin, standin: PdStandIn, within: float = BOUND, **config: Any
) -> str:
    """observe() raises a PluginError within `within` seconds; its message."""
    plugin = make_plugin(standin, **{**FAST, **config})
    start = time.monotonic()
    with pytest.raises(PluginError) as err:
        await plugin.observe()
    assert time.monotonic() - start < within
    return str(err.value)


async def test_pd_unreachable_names_every_url(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    for member in range(3):
        pd_standin.fail(member)
    message = await fails(make_plugin, pd_standin)
    for url in pd_standin.urls:
        assert f"{url} unreachable (ConnectError" in message
    assert "/pd/api/v1/stores" in message


async def test_pd_answering_html_is_not_json(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    pd_standin.answer("/stores", page, content_type="text/html")
    message = await fails(make_plugin, pd_standin)
    assert "not JSON (text/html" in message and "502 Bad Gateway" in message


async def test_pd_error_status_shows_the_start_of_its_body(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    text = json.dumps("[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped")
    pd_standin.answer("/stores", text, status=500)
    message = await fails(make_plugin, pd_standin)
    assert "HTTP 500: " in message and "not bootstrapped" in message


async def test_a_store_missing_its_id_is_an_error_not_a_guess(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.answer("/stores", (FIXTURES_PD / "stores_missing_id.json").read_bytes())
    message = await fails(make_plugin, pd_standin)
    assert "GET /pd/api/v1/stores?state=0&state=1&state=2 with JSON that is not PD's" in message
    assert "stores.1.store.id: Field required" in message


@pytest.mark.parametrize("body", [None, [], {"stores": "all of them"}, "OK"])
async def test_json_of_the_wrong_shape_is_refused(
    make_plugin: MakePlugin, pd_standin: PdStandIn, body: object
) -> None:
    pd_standin.answer("/stores", json.dumps(body))
    assert "not PD's store list" in await fails(make_plugin, pd_standin)


@pytest.mark.parametrize("cut", ["announced", "short read"])
async def test_truncated_json_is_refused(
    make_plugin: MakePlugin, pd_standin: PdStandIn, cut: str
) -> None:
    whole = stores_body(pd_standin)
    half = whole[: len(whole) // 2]
    # The body is what it says it is, but stops mid-document; or the connection ends before
    # the announced length.
    pd_standin.answer("/stores", half, length=len(whole) if cut == "short read" else None)
    message = await fails(make_plugin, pd_standin)
    assert ("not JSON" in message) if cut == "announced" else ("RemoteProtocolError" in message)


@pytest.mark.parametrize("length", [None, -1], ids=["announced", "unannounced"])
async def test_a_10_mb_body_is_refused_without_reading_it_all(
    make_plugin: MakePlugin, pd_standin: PdStandIn, length: int | None
) -> None:
    huge = b'{"count": 1, "stores": [' + b" " * (10 << 20) + b"]}"
    pd_standin.answer("/stores", huge, length=length)
    assert "too big a body" in await fails(make_plugin, pd_standin)


async def test_a_hanging_pd_fails_within_its_bound(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.fail(0, "hang")
    # One member, so one bound: with more, each is tried in turn, each bounded alike.
    message = await fails(make_plugin, pd_standin, pdUrls=pd_standin.urls[:1])
    assert "gave no complete answer within 1 s" in message


async def test_a_trickled_answer_is_bounded_as_a_whole(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # One byte every 0.1 s: every read is quick, the answer never is. Before, only each read
    # was bounded and such an answer took (bytes x 0.1) s.
    pd_standin.answer("/stores", stores_body(pd_standin), trickle=0.1)
    message = await fails(make_plugin, pd_standin, pdUrls=pd_standin.urls[:1])
    assert "gave no complete answer within 1 s" in message


async def test_headers_then_silence_is_bounded(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.answer("/regions/check/down-peer", b"", length=4096, hang=True)
    message = await fails(make_plugin, pd_standin, pdUrls=pd_standin.urls[:1])
    assert "no complete answer" in message


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"<html>maintenance</html>", "not JSON"),
        (b"null", "not PD's down-peer region list"),
        (b'{"count":"many","regions":[]}', "not PD's down-peer region list: count"),
        (region_list([region(12, down=(2,)), region(13, down=(2,))])[:-200], "not JSON"),
        (b'{"count":2,"regions":[' + b"x" * (2 << 20), "without 10 complete regions"),
        (b'{"count":2,"regions":[{"id":0}]}', "regions.0.id"),
    ],
    ids=["html", "null", "bad-count", "cut-short", "garbage-2MB", "bad-region"],
)
async def test_garbage_in_a_region_check_names_the_check(
    make_plugin: MakePlugin, pd_standin: PdStandIn, body: bytes, complaint: str
) -> None:
    pd_standin.answer("/regions/check/down-peer", body)
    message = await fails(make_plugin, pd_standin)
    assert "/regions/check/down-peer" in message
    assert complaint in message


@pytest.mark.parametrize(
    ("path", "body", "complaint"),
    [
        ("/schedulers", "<html>oops</html>", "not JSON"),
        ("/schedulers", '{"names": []}', "not a list of scheduler names"),
        ("/scheduler-config/evict-leader-scheduler/list", "[3]", "evict-leader scheduler's config"),
    ],
)
async def test_garbage_about_schedulers_fails_the_observation(
    make_plugin: MakePlugin, pd_standin: PdStandIn, path: str, body: str, complaint: str
) -> None:
    pd_standin.evict(2)
    pd_standin.answer(path, body)
    message = await fails(make_plugin, pd_standin)
    assert path in message and complaint in message


async def test_a_huge_down_peer_list_is_read_no_further_than_its_head(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    # 60k regions with a down peer on store 2 (about 30 MB): the observation needs the count
    # and ten regions, and reads about that.
    pd_standin.set_region_check_body("down-peer", many_regions(60_000, down=2))
    obs = await make_plugin(pd_standin, **FAST).observe()
    assert obs.facts["region_checks"]["down-peer"]["count"] == 60_000
    assert len(obs.facts["region_checks"]["down-peer"]["regions"]) == 10
    assert obs.metrics["unhealthy_regions"]["down-peer"] == 60_000


async def test_reads_fail_over_to_the_next_pd(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.fail(0)
    pd_standin.fail(1, "hang")
    obs = await make_plugin(pd_standin, **FAST).observe()
    assert len(obs.members) == 3
    assert set(pd_standin.asked("GET", "/stores")) == {1, 2}


async def test_an_answer_that_is_not_pds_on_one_member_fails_over(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.answer("/stores", "<html>proxy login</html>", content_type="text/html", on=0)
    obs = await make_plugin(pd_standin, **FAST).observe()
    assert len(obs.members) == 3


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/stores", '{"count": 3, "stores": "all of them"}'),
        ("/schedulers", '{"names": ["evict-leader-scheduler"]}'),
        ("/scheduler-config/evict-leader-scheduler/list", '{"store-id-ranges": [2]}'),
        ("/regions/check/down-peer", "null"),
    ],
)
async def test_json_of_the_wrong_shape_from_one_member_is_no_answer_for_a_read(
    make_plugin: MakePlugin, pd_standin: PdStandIn, path: str, body: str
) -> None:
    # A member that answers JSON, but not PD's: a read asks the next member, as it does for a
    # member that does not answer at all (it used to stop there and fail the observation).
    pd_standin.evict(2)
    pd_standin.answer(path, body, on=0)
    obs = await make_plugin(pd_standin, **FAST).observe()
    assert len(obs.members) == 3
    assert obs.metrics["evicting_leaders"] == {"store-1": 0.0, "store-2": 1.0, "store-3": 0.0}
    assert pd_standin.asked("GET", path) == [0, 1]


async def test_a_region_of_the_wrong_shape_from_one_member_is_no_answer(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.set_region_check("down-peer", [region(12)])  # PD knows region 12
    pd_standin.answer("/region/id/12", '{"id": "twelve", "peers": 3}', on=0)
    plugin = make_plugin(pd_standin, **FAST)
    p = plugin.action("transfer_leader").params.model_validate({"region_id": 12, "to_store": 2})
    assert await plugin.preconditions("transfer_leader", p, await plugin.observe()) == []
    assert pd_standin.asked("GET", "/region/id/12") == [0, 1]


async def test_a_timed_out_write_is_not_repeated_but_its_cleanup_moves_on(
    pd_standin: PdStandIn,
) -> None:
    # PD 0 applies the POST and answers too late: the POST must not go to PD 1 as well.
    pd_standin.fail(0, "slow")
    async with httpx.AsyncClient() as http:
        pd = PdClient(pd_standin.urls, http, timeout=1.0)
        with pytest.raises(PluginError, match="no complete answer within 1 s"):
            await pd.add_evict_leader(1)
        assert pd_standin.asked("POST", "/schedulers") == [0]
        assert 1 in pd_standin.evicted  # applied all the same
        # PD 0 now hangs without applying anything: the DELETE (idempotent) moves on.
        pd_standin.fail(0, "hang")
        assert await pd.remove_evict_leader(1) is True
    assert pd_standin.asked("DELETE", "/schedulers/evict-leader-scheduler-1") == [0, 1]
    assert "evict-leader-scheduler" not in pd_standin.schedulers


async def test_credentials_in_a_pd_url_never_reach_the_message(
    make_plugin: MakePlugin, pd_standin: PdStandIn
) -> None:
    pd_standin.fail(0)
    secret_url = pd_standin.urls[0].replace("http://", "http://admin:hunter2-secret@")
    message = await fails(make_plugin, pd_standin, pdUrls=[secret_url])
    assert "hunter2" not in message
    assert f"{pd_standin.urls[0].replace('http://', 'http://***@')} unreachable" in message


async def test_prometheus_answering_garbage_names_the_query(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    prom.raw = (200, "text/html", b"<html>login required</html>")
    message = await fails(make_plugin, pd_standin)
    assert "from Prometheus" in message
    assert prom.url in message


async def test_credentials_in_the_prometheus_url_are_masked(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    prom.raw = (200, "text/html", b"<html>login required</html>")
    plugin = make_plugin(pd_standin)
    secret = prom.url.replace("http://", "http://scraper:hunter2-secret@")
    plugin.ctx.prometheus = Prometheus(secret, timeout=2)
    with pytest.raises(PluginError) as err:
        await plugin.observe()
    assert "hunter2" not in str(err.value)
    assert "//***@127.0.0.1" in str(err.value)


async def test_prometheus_with_a_malformed_sample(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    body = (
        b'{"status":"success","data":{"resultType":"vector","result":'
        b'[{"metric":{"instance":"x:20180"},"value":[1,"fast"]}]}}'
    )
    prom.raw = (200, "application/json", body)
    assert "malformed sample" in await fails(make_plugin, pd_standin)


async def test_prometheus_unreachable(
    make_plugin: MakePlugin, pd_standin: PdStandIn, prom: StubPrometheus
) -> None:
    plugin = make_plugin(pd_standin)
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
