"""The gate every HTTP request passes (a plain ASGI middleware, the outermost of the app's own).

In order: a request id (the client's X-Request-ID if it is sane, else a new one; echoed back),
one Host header (two are 400, as RFC 9112 says), the Host against the allowed hosts (DNS
rebinding), 503 while draining after SIGTERM, 405 with an Allow header naming every method the
path answers (the framework's names only its first route's),
the API key (constant-time comparison), then at most `max_concurrency` /api requests in flight
(503 with Retry-After beyond it). Whatever happens inside, the client gets a JSON answer and
the log gets one line: the access line, a client gone away, or an unforeseen error (with its
traceback: that is a bug). Probes (/livez, /readyz, /healthz) skip the Host and key checks: they
reveal nothing and load balancers send the backend's own address as Host."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid

from charclf.printable import printable

PROBES = frozenset({"/livez", "/readyz", "/healthz"})
ROUTES = PROBES | {"/", "/metrics", "/api/predict", "/api/explain", "/api/model", "/openapi.json", "/docs"}
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
RETRY_SECONDS = b"1"


class Guard:
    def __init__(self, app, hosts: frozenset[str], keys: list[str], max_concurrency: int, lifecycle, metrics,
                 access_log, direct: dict | None = None, methods: dict[str, frozenset[str]] | None = None):
        self.app = app
        self.methods = methods or {}  # path -> the methods its routes answer
        # (method, path) -> endpoint, called here without the framework's routing and dependency
        # resolution (the same endpoint FastAPI would call: a third of the cost of a small request).
        # Not for a request with an Origin header: CORS (inside) must see it.
        self.direct = direct or {}
        self.children: dict[tuple, tuple] = {}  # (route, method, status) -> its metrics' labelled children
        self.hosts = None if "*" in hosts else hosts  # None: any Host
        self.keys = [hashlib.sha256(key.encode()).digest() for key in keys]  # equal lengths for compare_digest
        self.max_concurrency = max_concurrency
        self.busy = 0  # /api requests in flight
        self.lifecycle = lifecycle
        self.metrics = metrics
        self.log = access_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        path, method = scope["path"], scope["method"]
        headers = {name: value for name, value in scope["headers"]
                   if name in (b"host", b"x-request-id", b"authorization", b"x-api-key", b"origin")}
        hosts = sum(name == b"host" for name, _ in scope["headers"])  # the dict keeps the last
        given = headers.get(b"x-request-id", b"")
        request_id = given.decode() if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        status = 0

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        limited = path.startswith("/api/")
        refusal = self.refusal(path, method, headers, limited, hosts)
        self.metrics.in_flight.inc()
        try:
            if refusal:
                await error(send_with_id, *refusal)
            elif limited:
                self.busy += 1
                try:
                    status = await self.answer(scope, receive, send_with_id, request_id, lambda: status,
                                               b"origin" in headers) or status
                finally:
                    self.busy -= 1
            else:
                status = await self.answer(scope, receive, send_with_id, request_id, lambda: status,
                                           b"origin" in headers) or status
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - start
            key = (path if path in ROUTES else "other", method if method in METHODS else "other", status)
            if key not in self.children:
                self.children[key] = (self.metrics.requests.labels(key[0], key[1], str(status)),
                                      self.metrics.latency.labels(key[0]))
            counter, latency = self.children[key]
            counter.inc()
            latency.observe(seconds)
            self.log.request(method, path, status, seconds, request_id, scope.get("client"))

    def refusal(self, path: str, method: str, headers: dict, limited: bool, hosts: int = 1) -> tuple | None:
        """(status, message, extra headers) for a request refused before it starts, else None.
        A CORS preflight (OPTIONS) carries no key: browsers never send one with it."""
        if hosts > 1:
            return 400, "more than one Host header", ((b"connection", b"close"),)
        wrong_method = self.wrong_method(path, method, b"origin" in headers)
        if path in PROBES:
            return wrong_method
        if self.hosts is not None and host_name(headers.get(b"host", b"")) not in self.hosts:
            return 400, "this Host is not served here (start the server with --allowed-host to add it)", ()
        if self.lifecycle.draining:
            return 503, "the server is shutting down", ((b"retry-after", RETRY_SECONDS), (b"connection", b"close"))
        if wrong_method:
            return wrong_method
        if self.keys and (limited or path == "/metrics") and method != "OPTIONS" and not self.key_matches(headers):
            return 401, "an API key is needed: send it as Authorization: Bearer KEY or X-API-Key: KEY", \
                ((b"www-authenticate", b"Bearer"),)
        if limited and self.busy >= self.max_concurrency:
            return 503, "the server is busy: too many requests in flight; try again", ((b"retry-after", RETRY_SECONDS),)
        return None

    def wrong_method(self, path: str, method: str, cross_origin: bool) -> tuple | None:
        """405 naming in Allow every method `path` answers (the framework names its first route's
        only), for a method it does not; None for a path not served here (404) or a CORS preflight."""
        allowed = self.methods.get(path)
        if allowed is None or method in allowed or (method == "OPTIONS" and cross_origin):
            return None
        return 405, "Method Not Allowed", ((b"allow", ", ".join(sorted(allowed)).encode()),)

    def key_matches(self, headers: dict) -> bool:
        given = headers.get(b"x-api-key") or headers.get(b"authorization", b"").removeprefix(b"Bearer ")
        digest = hashlib.sha256(given.strip()).digest()
        matches = [hmac.compare_digest(digest, key) for key in self.keys]  # every key compared, none skipped
        return any(matches)

    async def answer(self, scope, receive, send, request_id: str, status, cross_origin: bool) -> int | None:
        """The app's answer, or a JSON error when it cannot give one: 503 for a request still
        running at the drain deadline, 500 for a bug. A client gone away before its body was read
        gets nothing: returns 499 (nginx's "client closed request") for its access line."""
        from starlette.requests import ClientDisconnect

        task = asyncio.current_task()
        self.lifecycle.tasks.add(task)
        endpoint = None if cross_origin else self.direct.get((scope["method"], scope["path"]))
        try:
            await (self.app(scope, receive, send) if endpoint is None else call(endpoint, scope, receive, send))
        except asyncio.CancelledError:
            if not self.lifecycle.expired or status():
                raise
            task.uncancel()  # cancelled by the drain deadline (lifecycle.Lifecycle.tick): answer it
            await error(send, 503, "the server shut down before this request was answered",
                        ((b"retry-after", RETRY_SECONDS), (b"connection", b"close")))
        except ClientDisconnect:
            return 499
        except Exception:
            self.log.logger.exception("error answering %s %s (request %s)", printable(scope["method"]),
                                      printable(scope["path"]), request_id)
            if not status():
                await error(send, 500, "internal error: the server could not answer this request")
        finally:
            self.lifecycle.tasks.discard(task)
        return None


async def call(endpoint, scope, receive, send) -> None:
    """Answer with `endpoint` (an async function of a Request returning a Response) as FastAPI
    would, an ApiError included (as app.api_error answers it)."""
    from starlette.requests import Request

    from charclf.server.requests import ApiError

    try:
        response = await endpoint(Request(scope, receive))
    except ApiError as e:
        headers = tuple((k.encode(), v.encode()) for k, v in (e.headers or {}).items())
        return await error(send, e.status, str(e), headers)
    await response(scope, receive, send)


async def error(send, status: int, message: str, headers=()) -> None:
    """Send {"error": message} with `status`."""
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def host_name(host: bytes) -> str:
    """A Host header's name, lower case, without its port ([::1]:8000 -> ::1)."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
