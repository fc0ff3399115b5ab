"""The server's Prometheus metrics (prometheus_client), served at /metrics.

One registry per application. With several worker processes (`serve --workers N`) each writes
its numbers to files in $PROMETHEUS_MULTIPROC_DIR (set by `charclf serve`) and /metrics adds up
every process's, whichever worker answers."""

from __future__ import annotations

import os
from collections import Counter as Tally

NAME_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("charclf_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=registry)
        self.latency = Histogram("charclf_request_duration_seconds", "Time from a request's headers to its answer",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.in_flight = Gauge("charclf_requests_in_flight", "Requests being answered now",
                               registry=registry, multiprocess_mode="livesum")
        self.names_per_request = Histogram("charclf_names_per_request", "Names asked per predict request",
                                           buckets=NAME_BUCKETS, registry=registry)
        self.names_per_call = Histogram("charclf_names_per_model_call", "Names per model call (requests batched)",
                                        buckets=NAME_BUCKETS, registry=registry)
        self.labels = Counter("charclf_predicted_labels", "Answers given, by label (unknown: abstained)",
                              ["label"], registry=registry)
        self.abstentions = Counter("charclf_abstentions", "Names answered unknown (no letters, or below "
                                   "min_confidence)", registry=registry)
        self.model = Gauge("charclf_model_info", "The model served (always 1; its id and format as labels)",
                           ["model_id", "format"], registry=registry, multiprocess_mode="max")

    def observe_call(self, predictions) -> None:
        """One model call's answers (in the worker thread: prometheus_client is thread-safe)."""
        self.names_per_call.observe(len(predictions))
        tally = Tally(p.label for p in predictions)
        for label, count in tally.items():
            self.labels.labels(label).inc(count)
        if "unknown" in tally:
            self.abstentions.inc(tally["unknown"])

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric (of every worker process, in multiprocess mode)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
