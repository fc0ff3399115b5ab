"""`charclf serve`'s process life, through real server processes: the drain on SIGTERM and at its
deadline, two worker processes sharing the port and their metrics, running out of files, and a
bad model file refused before any worker starts."""

import json
import signal
import socket
import time

import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.files.locations import shipped_checkpoint

httpx = pytest.importorskip("httpx", reason="the test extra: pip install -e '.[test,serve]'")
pytest.importorskip("fastapi", reason="the serve extra: pip install -e '.[test,serve]'")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from serving import Server  # noqa: E402

SHIPPED = shipped_checkpoint()

def start_post(port: int, body: bytes) -> socket.socket:
    """A POST whose body is half sent: in flight until the rest comes (finish_post)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body[: len(body) // 2])
    return s


def finish_post(s: socket.socket, body: bytes | None) -> tuple[int, bytes]:
    """Send the rest of the body (None: nothing more) and read the answer: (status, raw answer)."""
    if body is not None:
        s.sendall(body[len(body) // 2 :])
    s.settimeout(30)
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    return int(answer.split(b" ", 2)[1]), answer


def in_flight(url: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text)
    return next(f.samples[0].value for f in families if f.name == "charclf_requests_in_flight")


def wait_in_flight(url: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while in_flight(url) < count + 1:  # +1: the /metrics request itself
        assert time.monotonic() < deadline, "the requests never got in flight"
        time.sleep(0.05)


def test_sigterm_drains_requests_in_flight(tmp_path):
    server = Server(tmp_path, "--checkpoint", str(SHIPPED), "--log-format", "text")
    try:
        body = json.dumps(["Hinton", "Rossi"]).encode()
        posts = [start_post(server.port, body) for _ in range(3)]
        wait_in_flight(server.url, 3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        readyz = httpx.get(f"{server.url}/readyz", timeout=5)
        assert readyz.status_code == 503 and readyz.json() == {"status": "draining"}  # at once
        refused = httpx.get(f"{server.url}/api/predict", params={"name": "Late"}, timeout=5)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"  # new requests
        answers = [finish_post(s, body) for s in posts]  # the ones in flight finish
        assert [status for status, _ in answers] == [200] * 3 and b'"label": "Italian"' in answers[0][1]
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.log()
        assert server.log().count('"POST /api/predict" 200') == 3  # --log-format text: one line each
    finally:
        server.kill()


def test_at_the_drain_deadline_requests_get_503_never_500(tmp_path):
    server = Server(tmp_path, "--checkpoint", str(SHIPPED), "--drain-timeout", "0.5")
    try:
        posts = [start_post(server.port, json.dumps(["Hinton"] * 50).encode()) for _ in range(3)]
        wait_in_flight(server.url, 3)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        answers = [finish_post(s, None) for s in posts]  # their bodies never come
        assert [status for status, _ in answers] == [503] * 3 and time.monotonic() - started < 10
        assert b"retry-after: 1" in answers[0][1].lower() and b"shut down" in answers[0][1]
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.log() and "CancelledError" not in server.log()
    finally:
        server.kill()


@pytest.mark.slow
def test_two_worker_processes_share_the_port_and_their_metrics(tmp_path):
    server = Server(tmp_path, "--checkpoint", str(SHIPPED), "--workers", "2", "--no-access-log")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert all(client.get("/api/predict", params={"name": "Hinton"}).json()["label"] == "English"
                       for _ in range(20))
            families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        answered = sum(s.value for s in families["charclf_requests"].samples
                       if s.name.endswith("_total") and s.labels["route"] == "/api/predict")
        assert answered == 20  # whichever process answered /metrics, it counts both processes' requests
        assert server.stop() in (0, -signal.SIGTERM) and "Traceback" not in server.log()
    finally:
        server.kill()


def test_running_out_of_files_is_logged_once_a_second_at_most(tmp_path):
    """With a file limit of 100, 200 idle clients: the accept loop cannot take them all; it must
    not flood the log, and the server answers again once they are gone."""
    import resource

    server = Server(tmp_path, "--checkpoint", str(SHIPPED), "--no-access-log",
                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100)))
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
        time.sleep(3)
        for s in idle:
            s.close()
        time.sleep(0.5)
        assert httpx.get(f"{server.url}/api/predict", params={"name": "Hinton"}, timeout=5).status_code == 200
        assert len(server.log().splitlines()) <= 1 + 3 * 2  # the start line, and at most a line a second per kind
    finally:
        server.kill()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_bad_model_file_is_one_line_before_any_worker_starts(tmp_path, workers):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["serve", "--workers", workers, "--checkpoint", str(bad), "--port", "1"])
    assert result.exit_code == 1 and str(bad) in result.stderr and "Traceback" not in result.output
