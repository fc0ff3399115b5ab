"""`charclf serve` for real: a server started as a subprocess, asked over HTTP (httpx), and its
page driven in headless Chromium (Selenium)."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.files.locations import shipped_checkpoint
from charclf.server.requests import MAX_BODY_BYTES, MAX_NAME_CHARS, MAX_NAMES

httpx = pytest.importorskip("httpx", reason="the test extra: pip install -e '.[test,serve]'")
pytest.importorskip("uvicorn", reason="the serve extra: pip install -e '.[test,serve]'")

SHIPPED = shipped_checkpoint()
ARTIFACTS = Path(os.environ.get("CHARCLF_ARTIFACTS") or Path(__file__).parent / "artifacts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The base URL of a `charclf serve` subprocess, up for the module's tests."""
    port = free_port()
    env = {**os.environ, "CHARCLF_HOME": str(tmp_path_factory.mktemp("home")), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "charclf", "serve", "--port", str(port), "--threads", "2",
                                "--checkpoint", str(SHIPPED)], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the server did not answer /healthz within 60 s"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).json() == {"status": "ok"}:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    process.terminate()
    _, stderr = process.communicate(timeout=20)
    # uvicorn shuts down cleanly, then ends itself by the signal it got (-SIGTERM), as a process should.
    assert process.returncode in (0, -signal.SIGTERM) and "Traceback" not in stderr, stderr


def cli_json_lines(*names, k=3, extra=()):
    result = CliRunner().invoke(main, ["predict", *names, "--json", "-k", str(k), "--checkpoint", str(SHIPPED), *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_get_predict_is_predict_json(server):
    for name in ["Hinton", "Иванов", "山田", "..."]:
        answer = httpx.get(f"{server}/api/predict", params={"name": name, "top_k": 2})
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
        assert answer.json() == cli_json_lines(name, k=2)[0]
    low = httpx.get(f"{server}/api/predict", params={"name": "Jones", "min_confidence": 0.99}).json()
    assert low == cli_json_lines("Jones", extra=["--min-confidence", "0.99"])[0] and low["label"] == "unknown"


def test_post_predict_is_predict_json(server):
    names = ["Hinton", "Satoshi", "Ślusàrski", "Иванов", "...", "Nguyen"]
    answer = httpx.post(f"{server}/api/predict", params={"top_k": 4}, json=names)
    assert answer.status_code == 200
    assert answer.json() == cli_json_lines(*names, k=4)
    assert len(httpx.post(f"{server}/api/predict", json=["Smith"] * MAX_NAMES).json()) == MAX_NAMES


def test_explain_is_explain_json(server):
    for name in ["Hinton", "Иванов"]:
        answer = httpx.get(f"{server}/api/explain", params={"name": name, "top_k": 2})
        result = CliRunner().invoke(main, ["explain", name, "--json", "-k", "2", "--checkpoint", str(SHIPPED)])
        assert answer.status_code == 200 and answer.json() == json.loads(result.stdout)


def test_model(server):
    info = httpx.get(f"{server}/api/model").json()
    assert len(info["labels"]) == 18 and "English" in info["labels"]
    assert info["backbone"]["arch"] == "gru" and info["backbone"]["bidirectional"] is True
    assert 0.5 < info["metrics"]["test"]["accuracy"] < 1 and info["precision"] == "float32"
    assert {"charclf", "torch", "fastapi", "starlette", "uvicorn", "python"} <= set(info["versions"])
    assert info["model"] == cli_json_lines("Jones")[0]["model"] and info["format"] == "onnx"  # the shipped .pt's export
    assert "/" not in json.dumps(info)  # no file-system path


@pytest.mark.parametrize("method, path, params, body, status, message", [
    ("GET", "/api/predict", {}, None, 400, "missing query parameter: name"),
    ("GET", "/api/predict", {"name": "  "}, None, 400, "empty name"),
    ("GET", "/api/predict", {"name": "x" * (MAX_NAME_CHARS + 1)}, None, 400, "name too long"),
    ("GET", "/api/predict", {"name": "Jones", "top_k": "three"}, None, 400, "top_k must be a whole number"),
    ("GET", "/api/predict", {"name": "Jones", "top_k": "0"}, None, 400, "top_k must be a whole number >= 1, got 0"),
    ("GET", "/api/predict", {"name": "Jones", "top_k": "51"}, None, 400, "top_k must be at most 50"),
    ("GET", "/api/predict", {"name": "Jones", "min_confidence": "nan"}, None, 400,
     "min_confidence must be a number from 0 to 1, got nan"),
    ("GET", "/api/explain", {}, None, 400, "missing query parameter: name"),
    ("GET", "/api/explain", {"name": "..."}, None, 422, "no letters to read"),
    ("POST", "/api/predict", {}, b"Hinton", 400, "must be a JSON list of names"),
    ("POST", "/api/predict", {}, b"\xff\xfe", 400, "must be a JSON list of names"),
    ("POST", "/api/predict", {}, b'{"names": ["Hinton"]}', 400, "got an object"),
    ("POST", "/api/predict", {}, b"[]", 400, "the list is empty"),
    ("POST", "/api/predict", {}, b'["Hinton", 7]', 400, "a name must be a string, got a number"),
    ("POST", "/api/predict", {}, b'["Hinton", ""]', 400, "empty name"),
    ("POST", "/api/predict", {}, json.dumps(["Li"] * (MAX_NAMES + 1)).encode(), 413, "too many names"),
    ("POST", "/api/predict", {}, b"[" + b'"Smith",' * (MAX_BODY_BYTES // 8) + b'"Smith"]', 413, "request body over"),
    ("DELETE", "/api/predict", {}, None, 405, "Method Not Allowed"),
    ("GET", "/api/nothing", {}, None, 404, "Not Found"),
])
def test_bad_requests_get_a_json_error(server, method, path, params, body, status, message):
    headers = {"content-type": "application/json"} if body is not None else {}
    answer = httpx.request(method, server + path, params=params, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"] and "Traceback" not in answer.text


def test_an_oversized_body_without_a_length_is_refused_too(server):
    def chunks():  # streamed: no Content-Length, so the server has to count
        yield b"["
        for _ in range(MAX_BODY_BYTES // 1000 + 1):
            yield b'"Smith",' * 125
        yield b'"Smith"]'

    answer = httpx.post(f"{server}/api/predict", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "request body over" in answer.json()["error"]


def test_many_clients_at_once(server):
    async def ask_all():
        async with httpx.AsyncClient(base_url=server, timeout=30) as client:
            names = ["Hinton", "Satoshi", "Rossi", "Nguyen"] * 25
            return await asyncio.gather(*(client.get("/api/predict", params={"name": n}) for n in names))

    answers = asyncio.run(ask_all())
    assert [a.status_code for a in answers] == [200] * 100
    assert [a.json()["label"] for a in answers[:4]] == ["English", "Japanese", "Italian", "Vietnamese"]


def test_the_page_is_self_contained(server):
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<meta name="viewport"' in html and '<label for="name">' in html
    assert "src=" not in html and "href=" not in html and "@import" not in html  # nothing fetched from elsewhere


def test_serve_reports_a_port_in_use_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--checkpoint", str(SHIPPED)])
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.output


def chromium():
    """A headless Chromium under Selenium, or a skip (a failure under CI) saying what is missing."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        reason = ("headless page test needs Debian's chromium and chromium-driver (apt-get install chromium "
                  "chromium-driver)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,1150"]:
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


def test_the_page_in_headless_chromium(server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        browser.get(server + "/")
        typed_into = browser.switch_to.active_element  # the name field has the focus from the start
        assert typed_into.get_attribute("id") == "name"
        typed_into.send_keys("Hinton")
        wait = WebDriverWait(browser, 20)

        def top() -> list:
            return browser.find_elements(By.CSS_SELECTOR, "#predictions li")

        wait.until(lambda _: top() and top()[0].get_attribute("data-label") == "English")
        expected = httpx.get(f"{server}/api/predict", params={"name": "Hinton", "top_k": 5}).json()
        assert [li.get_attribute("data-label") for li in top()] == [p["label"] for p in expected["predictions"]]
        assert top()[0].find_element(By.CLASS_NAME, "pct").text == f"{expected['predictions'][0]['probability']:.1%}"
        tracked = httpx.get(f"{server}/api/explain", params={"name": "Hinton", "top_k": 5}).json()["tracked"]
        wait.until(lambda _: len(browser.find_elements(By.CSS_SELECTOR, "#chart polyline")) == len(tracked))
        browser.save_screenshot(str(ARTIFACTS / "serve.png"))

        typed_into.send_keys(Keys.TAB)  # the keyboard reaches the label count next
        assert browser.switch_to.active_element.get_attribute("id") == "topk"
        browser.set_window_size(390, 844)  # a phone
        field = browser.find_element(By.ID, "name")
        field.clear()
        field.send_keys("Иванов")
        wait.until(lambda _: "read as Ivanov" in browser.find_element(By.ID, "status").text)
        wait.until(lambda _: top()[0].get_attribute("data-label") == "Russian")
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        browser.save_screenshot(str(ARTIFACTS / "serve-phone.png"))
    finally:
        browser.quit()


def test_predict_takes_coverage_prior_and_full_names_as_the_cli_does(server):
    for params, extra in (({"coverage": "0.9"}, ["--coverage", "0.9"]), ({"prior": "uniform"}, ["--prior", "uniform"]),
                          ({"full_name": "true"}, ["--full-name"])):
        for name in ("Nguyen Van An", "Jones"):
            answer = httpx.get(f"{server}/api/predict", params={"name": name, **params})
            assert answer.status_code == 200 and answer.json() == cli_json_lines(name, extra=extra)[0]
    posted = httpx.post(f"{server}/api/predict", params={"coverage": "0.95"}, json=["Hinton", "Nguyen"]).json()
    assert [row["label_set"] for row in posted] == [r["label_set"] for r in cli_json_lines("Hinton", "Nguyen",
                                                                                        extra=["--coverage", "0.95"])]
    for params, message in (({"coverage": "1"}, "coverage must be a number between 0 and 1"),
                            ({"prior": "x.json"}, "prior must be"),
                            ({"coverage": "0.9", "prior": "uniform"}, "cannot be combined"),
                            ({"full_name": "maybe"}, "full_name must be")):
        answer = httpx.get(f"{server}/api/predict", params={"name": "Jones", **params})
        assert answer.status_code == 400 and message in answer.json()["error"]
