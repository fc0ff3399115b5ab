"""`charclf serve` against hostile requests, through a real server process: schemathesis generating
requests from /openapi.json (the schema and the server agree), the query's combinations in the
schema, Allow on 405, two Host headers, 100 KiB of headers in one read, and the text access log
under log injection; a .onnx model answering coverage, prior and explain."""

import json
import re
import signal
import socket
import sys

import pytest

from charclf.files.locations import shipped_checkpoint
from charclf.server.process import MAX_HEADER_BYTES

httpx = pytest.importorskip("httpx", reason="the test extra: pip install -e '.[test,serve]'")
pytest.importorskip("fastapi", reason="the serve extra: pip install -e '.[test,serve]'")
from serving import Server  # noqa: E402

# Statuses the schema declares that schemathesis would otherwise call wrong: /api/explain answers
# a name with no letters to read 422 (no schema can say which names read as letters); a list of
# names over the request's letters as read or its 64 KiB is 413 (no schema can add up its names'
# letters); too many names are 413, not 400.
CHECKS = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "413", "422"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "405", "413", "415", "422"]
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The shipped model's .onnx export (charclf.load's choice for the shipped model), access log in text."""
    tmp = tmp_path_factory.mktemp("hostile")
    server = Server(tmp, "--log-format", "text", "--header-timeout", "5")
    yield server
    code = server.stop()
    log = server.log()
    assert code in (0, -signal.SIGTERM) and "Traceback" not in log, log


def raw(port: int, request: bytes) -> bytes:
    """Send `request` in one write; its answer, headers and body (b"" if the server closed first)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        s.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := s.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: (\d+)", head)
        while length and len(body) < int(length.group(1)) and (chunk := s.recv(65536)):
            body += chunk
        return head + b"\r\n\r\n" + body


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_schemathesis_finds_nothing_against_the_real_server(served, tmp_path):
    """A bounded run (every check, a fixed seed): it takes seconds, and fails on any disagreement."""
    import subprocess

    config = tmp_path / "schemathesis.toml"
    config.write_text(CHECKS)
    done = subprocess.run([sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
                           "--config-file", str(config), "run", f"{served.url}/openapi.json", "--checks", "all",
                           "--max-examples", "25", "--seed", "1", "--workers", "1", "--no-color"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)  # its cache goes there
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert re.search(r"\d+ generated", done.stdout), done.stdout[-2000:]


def test_the_schema_says_what_the_server_refuses(served):
    spec = httpx.get(f"{served.url}/openapi.json").json()
    for method in ("get", "post"):
        [query] = spec["paths"]["/api/predict"][method]["parameters"]
        assert query["style"] == "form" and query["explode"] and query["schema"]["not"] == {
            "required": ["coverage", "prior"], "properties": {"prior": {"const": "uniform"}}}
    name = spec["paths"]["/api/predict"]["get"]["parameters"][0]["schema"]["properties"]["name"]
    body = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["items"]
    assert (name["minLength"], name["maxLength"]) == (body["minLength"], body["maxLength"]) == (1, 100)
    refused = httpx.get(f"{served.url}/api/predict", params={"name": "Jones", "coverage": 0.9, "prior": "uniform"})
    assert refused.status_code == 400 and "cannot be combined" in refused.json()["error"]
    for path, allowed in (("/api/predict", "GET, POST"), ("/api/model", "GET"), ("/livez", "GET")):
        answer = httpx.request("PUT", f"{served.url}{path}")
        assert answer.status_code == 405 and answer.headers["allow"] == allowed, (path, answer.headers)


@pytest.mark.parametrize("path", ["/api/model", "/livez"])
def test_two_host_headers_are_400(served, path):
    for hosts in (b"Host: evil.example\r\nHost: localhost\r\n", b"Host: localhost\r\nHost: localhost\r\n"):
        answer = raw(served.port, b"GET " + path.encode() + b" HTTP/1.1\r\n" + hosts + b"\r\n")
        assert status(answer) == 400 and b'"more than one Host header"' in answer, answer


def test_headers_over_the_limit_are_refused_even_in_one_read(served):
    line = lambda size: b"X-Pad: " + b"a" * size + b"\r\n"  # noqa: E731
    start = b"GET /api/model HTTP/1.1\r\nHost: localhost\r\n"
    assert status(raw(served.port, start + line(100 * 1024) + b"\r\n")) == 400
    assert status(raw(served.port, start + line(MAX_HEADER_BYTES - 200) + b"\r\n")) == 200
    # Just under the limit, then a body in the same read: the body does not count as headers.
    body = json.dumps(["Jones"] * 2000).encode()
    post = (b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
            line(MAX_HEADER_BYTES - 400) + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert status(raw(served.port, post)) == 413  # too many names: the headers passed


def test_the_text_access_log_escapes_what_the_client_sent(served):
    forged = b"/x%0A127.0.0.1%20%22GET%20/admin%22%20200%1b]0;owned%07%1b[31m"
    answer = raw(served.port, b"GET " + forged + b" HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: forged-path\r\n\r\n")
    assert status(answer) == 404
    httpx.get(f"{served.url}/livez")  # a later line: the one above has been written
    lines = [line for line in served.log().splitlines() if "/x" in line or "/admin" in line]
    assert len(lines) == 1 and lines[0].endswith("id=forged-path"), lines
    assert '"GET /x\\n127.0.0.1 \\"GET /admin\\" 200\\x1b]0;owned\\x07\\x1b[31m" 404' in lines[0]
    assert "\x1b" not in served.log() and "\x07" not in served.log()


def test_a_onnx_model_answers_coverage_prior_and_explain(served):
    """What docs/serving.md and docs/engines.md say: the .onnx export records what they need."""
    model = httpx.get(f"{served.url}/api/model").json()
    assert model["format"] == "onnx" and shipped_checkpoint().with_suffix(".onnx").is_file()
    covered = httpx.get(f"{served.url}/api/predict", params={"name": "Jones", "coverage": 0.9})
    uniform = httpx.get(f"{served.url}/api/predict", params={"name": "Jones", "prior": "uniform"})
    explained = httpx.get(f"{served.url}/api/explain", params={"name": "Jones"})
    assert [a.status_code for a in (covered, uniform, explained)] == [200, 200, 200]
    assert covered.json()["label_set"] and explained.json()["label"] == "English"
