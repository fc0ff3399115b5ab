"""`charclf explain` and `charclf serve`: how an answer forms letter by letter, and the model over
HTTP with its web page. Registered on the `charclf` group (charclf.cli.app.main)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from charclf.cli.app import (
    DEVICE_HELP,
    backend_option,
    check_out,
    checkpoint_option,
    load_model,
    main,
    needs_plotting,
    precision_option,
    prior_option,
    reports_errors,
    save_plot,
    show_option,
    threads_option,
    use_threads,
)
from charclf.cli.params import MAX_BATCH, MAX_K, MAX_SECONDS, THREADS, FilePath, FiniteFloatRange
from charclf.config import MODEL_LIMITS


@main.command()
@click.argument("name")
@click.option("-k", "--top-k", "k", type=click.IntRange(1, MAX_K), default=3, show_default=True,
              help="Labels shown per letter (and followed across the letters).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--plot", type=FilePath(dir_okay=False, path_type=Path), metavar="PNG",
              help="Also draw the followed labels' probabilities across the letters into PNG.")
@click.option("--gates", is_flag=True,
              help="Show what happens inside the network instead: after each letter, its gates (LSTM: input, "
                   "forget, output; GRU: update, reset) and its states' sizes, averaged over the units, and the "
                   "units that move most; --plot draws them as a heat map. Needs the .pt model and torch; runs on the "
                   "CPU.")
@click.option("--layer", type=click.IntRange(1, MODEL_LIMITS["num_layers"]), metavar="N",
              help="With --gates: the layer shown (1 is the first). Default: the last.")
@prior_option
@show_option
@checkpoint_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@precision_option
@backend_option
@reports_errors
@needs_plotting
def explain(name, k, as_json, plot, gates, layer, prior, show, checkpoint, device, threads, precision, backend):
    """Show how the answer for NAME forms, letter by letter.

    For every prefix of the name as the model reads it (H, Hi, Hin, ... Hinton) it prints the
    top labels the model would answer, and then names the letters that changed the final
    label's probability most. All prefixes are classified as one batch of names, each as a
    whole input of its own and answered as predict answers (the name's script counts as
    evidence on every row, and --prior reweights them as it does predict's), so the last row is
    exactly what predict answers: this works for every backbone, bidirectional ones included. A
    name in another script is shown as typed and as read (its Latin letters).

    \b
    Examples:
      charclf explain Hinton
      charclf explain Иванов --json
      charclf explain Hinton --plot explain.png
      charclf explain Hinton --gates --plot gates.png   # the gates inside, letter by letter
    """
    if layer is not None and not gates:
        raise click.UsageError("--layer goes with --gates")
    if prior is not None and gates:
        raise click.UsageError("--prior goes with the answers, not with --gates")
    from charclf.names.lines import read_argument

    _, shown, error = read_argument(1, name)  # checked as predict checks its arguments
    if error:
        raise click.UsageError(f"{shown!r}: {error}")
    check_out(plot, "picture", checkpoint, option="--plot")
    if gates:
        return _explain_gates(name, as_json, plot, show, checkpoint, layer, threads)
    from charclf.predict.explain import format_explanation

    result = load_model(checkpoint, device, precision, threads, backend, batch=False).explain(name, k=k, prior=prior)
    if plot:
        from charclf.report.explain_plot import save_explanation

        save_plot(lambda path: save_explanation(result, path), plot, show, "letter-by-letter plot",
                   quiet_stdout=as_json)
    click.echo(json.dumps(result, indent=2) if as_json else format_explanation(result))


def _explain_gates(name: str, as_json: bool, plot: Path | None, show: bool | None, checkpoint, layer: int | None,
                   threads: int | None):
    """explain --gates: the network's cells re-run letter by letter on the CPU (charclf.lab.gates)."""
    from charclf.files.locations import resolve_checkpoint

    path = resolve_checkpoint(checkpoint)
    if path.suffix.lower() == ".onnx":
        raise click.UsageError("--gates needs the .pt model and torch: an exported .onnx model does not show "
                               "its network's insides")
    from charclf.files.checkpoint import load_checkpoint
    from charclf.lab.gates import gate_trace
    from charclf.lab.text import format_gates

    use_threads(threads, batch=False)
    loaded = load_checkpoint(path)
    result = gate_trace(loaded.build_model("cpu"), loaded.alphabet, name, layer)
    if plot:
        from charclf.report.lab_plots import save_gates

        save_plot(lambda out: save_gates(result, out), plot, show, "gates plot", quiet_stdout=as_json)
    click.echo(json.dumps(result, indent=2) if as_json else format_gates(result))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default answers this machine only; 0.0.0.0 answers anyone "
                   "who can reach it (add the names they use with --allowed-host).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@checkpoint_option
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True, metavar="N",
              help="Server processes sharing the port, each with its own copy of the model.")
@click.option("--threads", type=THREADS, metavar="N",
              help="Model calls at once in each process, one CPU thread each. Default: $CHARCLF_THREADS, "
                   "else the free cores, divided among the workers.")
@click.option("--max-batch", type=click.IntRange(1, MAX_BATCH), default=2048, show_default=True, metavar="N",
              help="Predict requests waiting while the model is busy are answered in one call of up to N "
                   "names (1: each request alone).")
@click.option("--max-concurrency", type=click.IntRange(1, 1 << 16), default=256, show_default=True, metavar="N",
              help="/api requests in flight per process; more get 503 with Retry-After.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also accept this Host header (repeatable; * accepts any). Default: the --host address "
                   "and localhost only.")
@click.option("--api-key-file", type=FilePath(dir_okay=False, path_type=Path),
              help="Require an API key on /api and /metrics: one key per line (also: $CHARCLF_API_KEYS).")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Let web pages from this origin call the API (repeatable). Default: none.")
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True,
              help="The access log's lines on stderr.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One line per request.")
@click.option("--drain-timeout", type=FiniteFloatRange(0, MAX_SECONDS), default=10.0, show_default=True, metavar="S",
              help="After SIGTERM, requests in flight get S seconds to finish (then a 503).")
@click.option("--header-timeout", type=FiniteFloatRange(0.1, MAX_SECONDS), default=10.0, show_default=True, metavar="S",
              help="A connection must send its request headers (and a POST its body) within S seconds.")
@click.option("--idle-timeout", type=FiniteFloatRange(0.1, MAX_SECONDS), default=5.0, show_default=True, metavar="S",
              help="A kept-alive connection is closed after S idle seconds.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@precision_option
@backend_option
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="warning", show_default=True, help="uvicorn's log level.")
@reports_errors
def serve(host, port, checkpoint, workers, threads, max_batch, max_concurrency, allowed_hosts, api_key_file,
          cors_origins, log_format, access_log, drain_timeout, header_timeout, idle_timeout, device, precision,
          backend, log_level):
    """Serve the model over HTTP: a web page, a JSON API with its OpenAPI schema, probes and
    Prometheus metrics (needs the serve extra: fastapi, uvicorn, prometheus_client). A .pt or a .onnx model.

    \b
    GET  /                         the page: type a name, see its labels and how they form
    GET  /api/predict?name=N&top_k=3[&min_confidence=P]   one name, as `charclf predict --json`
    POST /api/predict?top_k=3      a JSON list of names (at most 1000) -> a list of the same
    GET  /api/explain?name=N&top_k=3   as `charclf explain --json`
    GET  /api/model                labels, backbone, metrics, versions
    GET  /livez, /readyz           up; ready (model warm, not shutting down). /healthz = /livez
    GET  /metrics                  Prometheus metrics
    GET  /docs, /openapi.json      the API's interactive docs and schema

    Bad requests get a 4xx JSON {"error": ...}. SIGTERM drains: /readyz fails, requests in
    flight finish. `charclf serve --help` lists every option; GET /docs shows the API's schema.

    \b
    Example:
      charclf serve --port 8000   # then open http://127.0.0.1:8000/
      charclf serve --checkpoint model.onnx --workers 2 --host 0.0.0.0 --allowed-host names.example.org
    """
    if not host.strip():  # an unset shell variable: '' would listen on every address
        raise click.BadParameter("an empty address: give one (0.0.0.0 answers anyone)", param_hint="'--host'")
    from charclf.server.app import check_model, create_app, load_model, require_extra
    from charclf.server.settings import Settings, read_api_keys
    from charclf.threads import thread_count

    require_extra()
    from charclf.server.process import bind, raise_file_limit, run_server

    try:
        threads = threads or max(1, thread_count(None) // workers)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    settings = Settings(checkpoint=str(checkpoint) if checkpoint else None, host=host, threads=threads,
                        max_batch=max_batch, device=device, precision=precision, backend=backend,
                        max_concurrency=max_concurrency,
                        allowed_hosts=list(allowed_hosts), api_key_file=str(api_key_file) if api_key_file else None,
                        cors_origins=list(cors_origins), log_format=log_format, access_log=access_log,
                        drain_seconds=drain_timeout, body_seconds=header_timeout)
    keys = read_api_keys(settings.api_key_file)  # a bad key file stops here, in one line
    if workers == 1:
        clf = load_model(settings)  # likewise a bad model file
        app, model_id = create_app(clf, settings, keys), clf.model_id
    else:  # each worker process loads its own; this one only checks the file, in a process of its own
        app, model_id = None, check_model(settings)
        os.environ.update(settings.to_env())
    raise_file_limit()
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving model {model_id} on http://{shown}:{port}/ with {workers} process(es) of {threads} "
               f"thread(s){', API keys required' if keys else ''}; Ctrl-C stops", err=True)
    run_server(app, sock, workers, log_level, header_timeout, idle_timeout)
