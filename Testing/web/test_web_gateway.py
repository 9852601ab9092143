"""The served study's front door: tokens, 404s, the coordinator page, message limits, bad input.

A real ``cmsynth reader-study serve`` subprocess on 127.0.0.1, real HTTP requests (raw paths sent
as typed, so nothing on the client side normalises a ``..`` away) and a real websocket client.
"""

import asyncio
import http.client
import json
import os
import re
import socket
import stat
import subprocess
import sys

import pytest

from testsupport.readers import write_dataset
from testsupport.web import ServedStudy, http_get, require_web

pytestmark = pytest.mark.slow

CMSYNTH = os.path.join(os.path.dirname(sys.executable), "cmsynth")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_web()
    root = tmp_path_factory.mktemp("gateway")
    data = write_dataset(str(root / "data"), 4, seed=11)
    study = str(root / "ward_b_study")
    out = subprocess.run([CMSYNTH, "reader-study", "create", "--real", data["real"], "--synthetic", data["synthetic"],
                          "--readers", "2", "--trials-per-reader", "4", "--mode", "volumes", "--out", study],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    s = ServedStudy(study, str(root / "srv")).start()
    yield s
    s.stop()


def raw_get(port, path, method="GET"):
    """(status, body) of a request whose path is sent byte for byte as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read().decode("utf-8", "replace")
    conn.close()
    return resp.status, body


def token_of(link):
    return link.rstrip("/").rsplit("/", 1)[1]


def test_links_are_random_per_reader_and_kept_in_a_private_file(served):
    r1, r2, coord = (token_of(served.links[k]) for k in ("R01", "R02", "coordinator"))
    assert len({r1, r2, coord}) == 3 and min(len(r1), len(r2), len(coord)) >= 43
    path = served.study_dir + "_web_tokens.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        assert json.load(f)["readers"]["R01"] == r1
    assert not os.path.exists(os.path.join(served.study_dir, "ward_b_study_web_tokens.json"))


def test_a_wrong_token_a_climbing_path_or_a_post_gets_the_same_404(served):
    port = served.port
    r1, coord = token_of(served.links["R01"]), token_of(served.links["coordinator"])
    _, missing_page = raw_get(port, "/no/such/page")
    key = os.path.basename(served.study_dir) + "_key.json"
    refused = [
        "/r/" + "A" * 43 + "/",  # a token of the right shape that is not one
        "/r/" + r1[:-1] + "/",  # one character short
        f"/r/{coord}/",  # the coordinator's token is no reader's
        f"/c/{r1}/",  # a reader's token is not the coordinator's
        f"/c/{r1}/progress.json",
        f"/r/{r1}/../../{key}",
        f"/r/{r1}/%2e%2e/%2e%2e/{key}",
        f"/r/{r1}/..%2f..%2f{key}",
        f"/r/{r1}//etc/passwd",
        f"/r/{r1}/%2Fetc%2Fpasswd",
        f"/r/{r1}/images\\t_000.nrrd",
        f"/r/{r1}/" + "a" * 600,
        f"/r/{r1}",  # no slash: the page's relative assets would resolve elsewhere
    ]
    for path in refused:
        assert raw_get(port, path) == (404, missing_page), path
    assert raw_get(port, f"/c/{coord}/", method="POST") == (404, missing_page)
    assert missing_page == "404: Not Found"


def test_the_coordinator_page_shows_counts_and_nothing_of_the_truth(served):
    coord = served.links["coordinator"]
    status, page = http_get(coord)
    assert status == 200
    assert page.count("0 / 4") == 2 and "R01" in page and "R02" in page
    status, body = http_get(coord + "progress.json")
    assert status == 200
    progress = json.loads(body)
    assert progress["readers"] == [{"reader": "R01", "done": 0, "total": 4}, {"reader": "R02", "done": 0, "total": 4}]
    images = [f.split(".")[0] for f in os.listdir(os.path.join(served.study_dir, "images"))]
    for text in (page, body):
        assert not [i for i in images if i in text]
        assert "real" not in text.lower() and "synthetic" not in text.lower()
    assert served.key_opens() == []


def test_a_reader_page_is_served_and_an_oversized_websocket_message_is_refused(served):
    import aiohttp

    status, page = http_get(served.links["R01"], timeout=180)
    assert status == 200 and "<html" in page.lower()

    async def send(size):
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(served.links["R01"].replace("http://", "ws://") + "ws") as ws:
                await ws.send_bytes(b"\0" * size)
                msg = await ws.receive(timeout=30)
                return msg.type, ws.close_code

    kind, code = asyncio.run(send(300 * 1024))
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


def _hello(secret):
    import msgpack

    body = msgpack.packb({"wslink": "1.0", "id": "system:c0:0", "method": "wslink.hello",
                          "args": [{"secret": secret}], "kwargs": {}}, use_bin_type=True)
    return (1).to_bytes(4, "little") + (0).to_bytes(4, "little") + len(body).to_bytes(4, "little") + body


def _say_hello(url):
    """What a websocket at ``url`` answers to the hello a browser sends (the default secret)."""
    import aiohttp
    import msgpack

    async def go():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url) as ws:
                await ws.send_bytes(_hello("wslink-secret"))
                msg = await ws.receive(timeout=30)
                return msgpack.unpackb(msg.data[12:], raw=False) if msg.type == aiohttp.WSMsgType.BINARY else None

    return asyncio.run(go())


def test_a_page_process_gives_no_session_to_a_direct_local_connection(served):
    status, _ = http_get(served.links["R02"], timeout=180)  # starts R02's page process
    assert status == 200
    with open(os.path.join(served.work_dir, "logs", "page-R02.log")) as f:
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read()).group(1))
    through_gateway = _say_hello(served.links["R02"].replace("http://", "ws://") + "ws")
    assert "clientID" in through_gateway["result"]  # the gateway put the page's key into the hello
    direct = _say_hello(f"ws://127.0.0.1:{port}/ws")
    assert direct is None or ("error" in direct and "clientID" not in str(direct.get("result")))


def test_serve_refuses_a_missing_study_and_a_busy_port_in_one_sentence(served, tmp_path):
    out = subprocess.run([CMSYNTH, "reader-study", "serve", str(tmp_path / "nowhere")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 and out.stderr.strip().count("\n") == 0 and "nowhere" in out.stderr
    out = subprocess.run([CMSYNTH, "reader-study", "serve", served.study_dir, "--port", str(served.port)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and f"{served.port}" in out.stderr and "--port" in out.stderr
    with socket.create_connection(("127.0.0.1", served.port), timeout=5):
        pass  # the running server is untouched
