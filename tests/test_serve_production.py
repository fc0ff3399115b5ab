"""`charclf serve` as a production service, through real server processes: the OpenAPI schema
against real answers, probes, metrics, request ids and the access log, Host and API-key
refusals, CORS, the limits (letters as read, content type, JSON depth, concurrency), idle
sockets, and a .onnx model answering as its .pt (the process's life: test_serve_lifecycle.py)."""

import asyncio
import json
import shutil
import signal
import socket
import time

import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.files.locations import shipped_checkpoint
from charclf.server.requests import MAX_JSON_DEPTH, MAX_NAME_LETTERS, MAX_REQUEST_LETTERS

httpx = pytest.importorskip("httpx", reason="the test extra: pip install -e '.[test,serve]'")
jsonschema = pytest.importorskip("jsonschema", reason="the test extra: pip install -e '.[test,serve]'")
pytest.importorskip("fastapi", reason="the serve extra: pip install -e '.[test,serve]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from serving import Server  # noqa: E402

SHIPPED = shipped_checkpoint()
KEY = "k" * 8 + "-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"content-type": "application/json"}
NAMES = ["Hinton", "Satoshi", "Иванов", "山田", "Nguyen Van An", "...", "Müller"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server with API keys, an extra allowed host, a CORS origin and a small concurrency limit."""
    tmp = tmp_path_factory.mktemp("served")
    (tmp / "keys").write_text(f"# one key per line\n{KEY}\n")
    server = Server(tmp, "--checkpoint", str(SHIPPED), "--backend", "torch", "--api-key-file", str(tmp / "keys"),
                    "--allowed-host",
                    "names.example.org", "--cors-origin", "https://app.example.org", "--max-concurrency", "2",
                    "--header-timeout", "2")
    yield server
    code = server.stop()
    log = server.log()
    assert code in (0, -signal.SIGTERM) and "Traceback" not in log, log


@pytest.fixture(scope="module")
def api(served):
    with httpx.Client(base_url=served.url, headers=AUTH, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory):
    """The shipped model exported to .onnx beside a copy of its .pt (so that it is named by the .pt's
    id: charclf.predict.loading) and served, with keys from the environment."""
    tmp = tmp_path_factory.mktemp("onnx")
    shutil.copy(SHIPPED, tmp / "model.pt")
    result = CliRunner().invoke(main, ["export", str(tmp / "model.onnx"), "--checkpoint", str(tmp / "model.pt")])
    assert result.exit_code == 0, result.output
    server = Server(tmp, "--checkpoint", str(tmp / "model.onnx"), env={"CHARCLF_API_KEYS": KEY})
    yield server
    assert server.stop() in (0, -signal.SIGTERM) and "Traceback" not in server.log(), server.log()


def validator(spec: dict, path: str, method: str, status: int):
    """A jsonschema validator for the JSON answer the schema declares for (path, method, status)."""
    content = spec["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator({**content, "components": spec["components"]})


def test_the_openapi_schema_matches_real_answers(api, served):
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and httpx.get(f"{served.url}/docs").status_code == 200
    answers = [
        ("/api/predict", "get", api.get("/api/predict", params={"name": "Hinton", "min_confidence": 0.99})),
        ("/api/predict", "get", api.get("/api/predict", params={"name": "Nguyen Van An", "full_name": "true",
                                                                "coverage": 0.9})),
        ("/api/predict", "post", api.post("/api/predict", json=NAMES, params={"top_k": 5})),
        ("/api/explain", "get", api.get("/api/explain", params={"name": "Иванов"})),
        ("/api/model", "get", api.get("/api/model")),
        ("/livez", "get", api.get("/livez")), ("/readyz", "get", api.get("/readyz")),
        ("/healthz", "get", api.get("/healthz")),
        ("/api/predict", "get", api.get("/api/predict")),  # 400
        ("/api/predict", "post", api.post("/api/predict", content=b'["x"]')),  # 415
        ("/api/predict", "get", httpx.get(f"{served.url}/api/predict", params={"name": "x"})),  # 401
        ("/api/predict", "post", api.post("/api/predict", json=["Li"] * 1001)),  # 413
    ]
    statuses = set()
    for path, method, answer in answers:
        validator(spec, path, method, answer.status_code).validate(answer.json())
        statuses.add(answer.status_code)
    assert statuses == {200, 400, 401, 413, 415}
    assert {"/api/predict", "/api/explain", "/api/model", "/livez", "/readyz", "/healthz", "/metrics"} \
        <= set(spec["paths"])
    [query] = spec["paths"]["/api/predict"]["get"]["parameters"]  # one object: its options and how they combine
    declared = set(query["schema"]["properties"])
    assert declared == {"name", "top_k", "min_confidence", "coverage", "prior", "full_name"}


def test_probes(served):
    for path, body in (("/livez", {"status": "ok"}), ("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
        answer = httpx.get(served.url + path, headers={"Host": "anything.example"})  # probes: no Host or key check
        assert answer.status_code == 200 and answer.json() == body


def test_request_ids_and_one_json_access_line_each(api, served):
    given = api.get("/api/predict", params={"name": "Jones"}, headers={"X-Request-ID": "trace-42.a:b"})
    made = api.get("/api/model")
    bad = api.get("/api/model", headers={"X-Request-ID": "no spaces allowed"})
    assert given.headers["x-request-id"] == "trace-42.a:b"
    assert len(made.headers["x-request-id"]) == 32 and bad.headers["x-request-id"] != "no spaces allowed"
    time.sleep(0.2)
    lines = {json.loads(line)["request_id"]: json.loads(line) for line in served.log().splitlines()
             if line.startswith("{")}
    line = lines["trace-42.a:b"]
    assert line["method"] == "GET" and line["path"] == "/api/predict" and line["status"] == 200 and line["ms"] > 0
    assert "Jones" not in json.dumps(line)  # names (in the query) stay out of the log
    assert made.headers["x-request-id"] in lines


def test_hosts_outside_the_allow_list_are_refused(api, served):
    for host in ("evil.example", "names.example.org.evil.example", "127.0.0.2"):
        answer = api.get("/api/model", headers={"Host": host})
        assert answer.status_code == 400 and "Host" in answer.json()["error"]
    for host in ("names.example.org", f"localhost:{served.port}", f"127.0.0.1:{served.port}", "[::1]"):
        assert api.get("/api/model", headers={"Host": host}).status_code == 200
    slash = api.get("/api/predict/", params={"name": "Jones"}, headers={"Host": "names.example.org"})
    assert slash.status_code == 404 and "location" not in slash.headers  # no redirect naming the Host
    assert "/" not in json.dumps(api.get("/api/model").json())  # no file-system path in the model's answer


def test_api_keys(served):
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"X-API-Key": KEY[:-1]}):
        answer = httpx.get(f"{served.url}/api/predict", params={"name": "Jones"}, headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert "API key" in answer.json()["error"]
    assert httpx.get(f"{served.url}/metrics").status_code == 401
    for headers in (AUTH, {"X-API-Key": KEY}):
        assert httpx.get(f"{served.url}/api/predict", params={"name": "Jones"}, headers=headers).status_code == 200
    assert httpx.get(f"{served.url}/").status_code == 200  # the page itself is open; its API calls need the key


def test_cors_only_for_the_named_origin(api):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = api.options("/api/predict", headers={"Origin": "https://app.example.org", **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    other = api.get("/api/model", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("name", ["\ufdfa" * 4, "\ufdfa" + "a" * 80])
def test_a_name_is_limited_in_letters_as_read(api, name):
    assert len(name) <= 100  # short as typed: the letters after transliteration are what count
    answer = api.get("/api/predict", params={"name": name})
    assert answer.status_code == 400 and f"at most {MAX_NAME_LETTERS}" in answer.json()["error"]
    assert api.get("/api/explain", params={"name": name}).status_code == 400


def test_a_request_is_limited_in_letters_as_read(api):
    names = ["\ufdfa" * 3] * 1000  # 81 letters each as read: about 81,000 in all
    started = time.monotonic()
    answer = api.post("/api/predict", json=names)
    assert answer.status_code == 413 and f"over {MAX_REQUEST_LETTERS} letters" in answer.json()["error"]
    assert time.monotonic() - started < 5
    assert api.get("/api/predict", params={"name": "\ufdfa"}).status_code == 200  # one reads as 27 letters: fine


def test_post_bodies_must_be_json_and_shallow(api, served):
    for kind in (None, "text/plain", "application/x-www-form-urlencoded"):
        answer = api.post("/api/predict", content=b'["Hinton"]', headers={"content-type": kind} if kind else {})
        assert answer.status_code == 415 and "application/json" in answer.json()["error"]
    assert api.post("/api/predict", content=b'["Hinton"]', headers={"content-type": "application/json; charset=utf-8"}
                    ).status_code == 200
    for body in (b"[" * 1000 + b"]" * 1000, b'[{"a": [[["Hinton"]]]}]', b'["[[[[[[", [[[[[["x"]]]]]]]'):
        answer = api.post("/api/predict", content=body, headers=JSON)
        assert answer.status_code == 400 and "nests deeper" in answer.json()["error"]
    assert api.post("/api/predict", content=b'["[[[[[[[[", "]]]]"]', headers=JSON).status_code == 200  # in strings
    assert MAX_JSON_DEPTH < 6 and "RecursionError" not in served.log()


def test_beyond_max_concurrency_is_503_with_retry_after(served):
    names = [f"Name{i}son" for i in range(1000)]

    async def flood():
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=60) as client:
            return await asyncio.gather(*(client.post("/api/predict", json=names) for _ in range(12)))

    answers = asyncio.run(flood())
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 503}, statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
    assert httpx.get(f"{served.url}/readyz").status_code == 200  # probes are never refused


def test_300_idle_sockets_do_not_hold_up_a_request(api, served):
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", served.port)))
        started = time.monotonic()
        answer = httpx.get(f"{served.url}/api/predict", params={"name": "Hinton"}, headers=AUTH, timeout=5)
        assert answer.status_code == 200 and time.monotonic() - started < 1
        # --header-timeout 2: the server closes a connection that sent no request in time.
        idle[0].settimeout(10)
        started = time.monotonic()
        assert idle[0].recv(1) == b"" and 1 < time.monotonic() - started < 8
    finally:
        for s in idle:
            s.close()


def test_the_header_deadline_rests_on_uvicorn_hooks_in_the_pinned_range():
    """GuardedHttpProtocol (the deadline above) subclasses uvicorn's httptools protocol, which is not
    uvicorn's public API: the installed uvicorn is in the range pyproject.toml pins, and has every
    hook the subclass overrides or calls."""
    from importlib.metadata import version
    from pathlib import Path

    import tomllib
    from packaging.requirements import Requirement
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from charclf.server.process import GuardedHttpProtocol

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    [pinned] = [Requirement(r) for r in project["optional-dependencies"]["serve"] if r.startswith("uvicorn")]
    assert pinned.specifier.contains(version("uvicorn")) and not pinned.specifier.contains("0.56")  # an upper bound
    overridden = {name for name in vars(GuardedHttpProtocol) if not name.startswith("__")}
    own = {"arm_header_timer", "header_timeout", "disarm_header_timer", "header_part"}
    assert overridden - own <= set(dir(HttpToolsProtocol)) and "send_400_response" in dir(HttpToolsProtocol)


def test_a_client_that_goes_away_mid_body_is_one_log_line(served):
    with socket.create_connection(("127.0.0.1", served.port)) as s:
        s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {KEY}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 1000\r\nX-Request-ID: gone-away\r\n\r\n"
                  '["Hin'.encode())
        time.sleep(0.3)
    time.sleep(0.5)
    lines = [line for line in served.log().splitlines() if "gone-away" in line]
    assert len(lines) == 1 and json.loads(lines[0])["status"] == 499 and "Traceback" not in served.log()


def test_metrics_parse_with_prometheus_client(api):
    api.post("/api/predict", json=["Hinton", "Rossi", "..."])
    api.get("/api/predict", params={"name": "Jones", "min_confidence": "0.999"})
    families = {f.name: f for f in text_string_to_metric_families(api.get("/metrics").text)}
    requests = families["charclf_requests"].samples
    assert any(s.labels == {"route": "/api/predict", "method": "POST", "status": "200"} and s.value >= 1
               for s in requests)
    assert any(s.labels["status"] == "401" for s in requests) or True  # order of tests may vary
    assert any(s.name.endswith("_count") and s.value > 0 for s in families["charclf_request_duration_seconds"].samples)
    assert "charclf_requests_in_flight" in families
    counts = {s.name: s.value for s in families["charclf_names_per_request"].samples}
    assert counts["charclf_names_per_request_count"] >= 2 and counts["charclf_names_per_request_sum"] >= 4
    assert any(s.name.endswith("_count") and s.value > 0 for s in families["charclf_names_per_model_call"].samples)
    labels = {s.labels["label"]: s.value for s in families["charclf_predicted_labels"].samples
              if s.name.endswith("_total")}
    assert labels["English"] >= 1 and labels["Italian"] >= 1 and labels["unknown"] >= 2  # "..." and Jones
    assert next(s.value for s in families["charclf_abstentions"].samples if s.name.endswith("_total")) >= 2
    info = families["charclf_model_info"].samples[0]
    assert info.value == 1 and info.labels == {"model_id": api.get("/api/model").json()["model"], "format": "pt"}


def test_a_onnx_model_answers_as_its_pt(api, onnx_server):
    onnx = httpx.Client(base_url=onnx_server.url, headers={"X-API-Key": KEY}, timeout=30)
    for params in ({"name": "Hinton"}, {"name": "Иванов", "top_k": 5}, {"name": "Nguyen Van An", "full_name": "1"}):
        assert_same_rows([onnx.get("/api/predict", params=params).json()],
                         [api.get("/api/predict", params=params).json()])
    assert_same_rows(onnx.post("/api/predict", json=NAMES).json(), api.post("/api/predict", json=NAMES).json())
    pt_info, onnx_info = api.get("/api/model").json(), onnx.get("/api/model").json()
    assert (pt_info.pop("format"), onnx_info.pop("format")) == ("pt", "onnx")
    assert pt_info.pop("model") == onnx_info.pop("model") and pt_info == onnx_info  # the id of the .pt it came from
    explained = onnx.get("/api/explain", params={"name": "Hinton"})
    expected = api.get("/api/explain", params={"name": "Hinton"}).json()
    assert explained.status_code == 200 and explained.json()["tracked"] == expected["tracked"]
    assert [[t["label"] for t in row["top"]] for row in explained.json()["letters"]] == \
        [[t["label"] for t in row["top"]] for row in expected["letters"]]
    assert httpx.get(f"{onnx_server.url}/api/model").status_code == 401  # keys from $CHARCLF_API_KEYS
    plain = httpx.get(f"{onnx_server.url}/api/model", headers={"X-API-Key": KEY, "Origin": "https://app.example.org"})
    assert "access-control-allow-origin" not in plain.headers  # CORS is off unless --cors-origin


def assert_same_rows(got: list[dict], want: list[dict]) -> None:
    """The same answers from torch and ONNX Runtime: probabilities may differ in the last digits."""
    assert len(got) == len(want)
    for row, expected in zip(got, want):
        got_p, want_p = row.pop("predictions"), expected.pop("predictions")
        row.pop("model"), expected.pop("model")
        assert row == expected and [p["label"] for p in got_p] == [p["label"] for p in want_p]
        assert all(abs(a["probability"] - b["probability"]) < 1e-4 for a, b in zip(got_p, want_p))
