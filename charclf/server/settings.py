"""What one server process needs to know, handed from `charclf serve` to each worker process.

uvicorn starts every worker by importing an application factory (app.app_from_env), so the
settings travel as one JSON environment variable; the API keys never do: each worker reads
them itself from the key file or from $CHARCLF_API_KEYS."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from charclf.errors import CharclfError

SETTINGS_ENV = "CHARCLF_SERVE_SETTINGS"
KEYS_ENV = "CHARCLF_API_KEYS"  # API keys separated by commas or white space
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(slots=True)
class Settings:
    checkpoint: str | None = None  # a .pt or .onnx file; None: charclf.load()'s default
    host: str = "127.0.0.1"  # the bound address: an accepted Host header
    threads: int = 1  # model calls at once in each process, one thread each
    max_batch: int = 2048  # names per model call at most (batcher.MAX_BATCH_NAMES)
    device: str = "auto"
    precision: str | None = None
    backend: str = "auto"  # charclf.load's: the .onnx export where it can, else torch
    max_concurrency: int = 256  # /api requests in flight per process; more get 503
    allowed_hosts: list[str] = field(default_factory=list)  # Host headers accepted besides the defaults
    api_key_file: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    log_format: str = "json"  # json or text: the access log's lines
    access_log: bool = True
    drain_seconds: float = 10.0  # after SIGTERM, requests in flight get this long before a 503
    body_seconds: float = 10.0  # a request body must arrive within this

    def to_env(self) -> dict[str, str]:
        return {SETTINGS_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ=os.environ) -> Settings:
        text = environ.get(SETTINGS_ENV)
        return cls(**json.loads(text)) if text else cls()

    def hosts(self) -> frozenset[str]:
        """Accepted Host header values, lower case, without a port ("*": any)."""
        return frozenset(h.lower().strip("[]") for h in (self.host, *LOCAL_HOSTS, *self.allowed_hosts))


def read_api_keys(key_file: str | None, environ=os.environ) -> list[str]:
    """The API keys: one per line of `key_file` (blank lines and # comments skipped), and any in
    $CHARCLF_API_KEYS. An empty list: the API is open."""
    keys = environ.get(KEYS_ENV, "").replace(",", " ").split()
    if key_file:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CharclfError(f"cannot read the API key file {key_file}: "
                               f"{getattr(e, 'strerror', None) or e}") from None
        lines = [line.strip() for line in text.splitlines()]
        keys += [line for line in lines if line and not line.startswith("#")]
        if not keys:
            raise CharclfError(f"the API key file {key_file} holds no key")
    short = [key for key in keys if len(key) < 16]
    if short:
        raise CharclfError(f"an API key must have at least 16 characters; {len(short)} of them are shorter")
    return keys
