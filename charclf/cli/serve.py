"""`charclf explain` and `charclf serve`: how an answer forms letter by letter, and the model over
HTTP with its web page. Registered on the `charclf` group (charclf.cli.app.main)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from charclf.cli.app import (DEVICE_HELP, backend_option, check_out, checkpoint_option, load_model, main,
                             precision_option, reports_errors, save_plot, show_option, thread_count, threads_option,
                             use_threads)


@main.command()
@click.argument("name")
@click.option("-k", "--top-k", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Labels shown per letter (and followed across the letters).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="PNG",
              help="Also draw the followed labels' probabilities across the letters into PNG.")
@click.option("--gates", is_flag=True,
              help="Show what happens inside the network instead: after each letter, its gates (LSTM: input, "
                   "forget, output; GRU: update, reset) and its states' sizes, averaged over the units, and the "
                   "units that move most; --plot draws them as a heat map. Needs the .pt model and torch; runs on the CPU.")
@click.option("--layer", type=click.IntRange(min=1), metavar="N",
              help="With --gates: the layer shown (1 is the first). Default: the last.")
@show_option
@checkpoint_option
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@threads_option
@precision_option
@backend_option
@reports_errors
def explain(name, k, as_json, plot, gates, layer, show, checkpoint, device, threads, precision, backend):
    """Show how the answer for NAME forms, letter by letter.

    For every prefix of the name as the model reads it (H, Hi, Hin, ... Hinton) it prints the
    top labels the model would answer, and then names the letters that changed the final
    label's probability most. All prefixes are classified as one batch of names, each as a
    whole input of its own (the last is exactly what predict answers): this works for every
    backbone, bidirectional ones included. A name in another script is shown as typed and as
    read (its Latin letters).

    \b
    Examples:
      charclf explain Hinton
      charclf explain Иванов --json
      charclf explain Hinton --plot explain.png
      charclf explain Hinton --gates --plot gates.png   # the gates inside, letter by letter
    """
    if layer is not None and not gates:
        raise click.UsageError("--layer goes with --gates")
    check_out(plot, "picture", checkpoint, option="--plot")
    if gates:
        return _explain_gates(name, as_json, plot, show, checkpoint, layer, threads)
    from charclf.predict.explain import format_explanation

    result = load_model(checkpoint, device, precision, threads, backend, batch=False).explain(name, k=k)
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
                   "who can reach it.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@checkpoint_option
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Model calls at once, each on one torch thread. Default: $CHARCLF_THREADS, else the free cores.")
@click.option("--max-batch", type=click.IntRange(min=1), default=2048, show_default=True, metavar="N",
              help="Predict requests waiting while the model is busy are answered in one call of up to N "
                   "names (1: each request alone).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@precision_option
@backend_option
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="warning", show_default=True, help="uvicorn's log level (info: one line per request).")
@reports_errors
def serve(host, port, checkpoint, workers, max_batch, device, precision, backend, log_level):
    """Serve the model over HTTP: a web page and a JSON API (needs `pip install 'charclf[serve]'`).

    \b
    GET  /                         the page: type a name, see its labels and how they form
    GET  /api/predict?name=N&top_k=3[&min_confidence=P]   one name, as `charclf predict --json`
    POST /api/predict?top_k=3      a JSON list of names (at most 1000) -> a list of the same
    GET  /api/explain?name=N&top_k=3   as `charclf explain --json`
    GET  /api/model                labels, backbone, metrics, versions
    GET  /healthz                  {"status": "ok"}

    The model is loaded once. Bad requests get a 4xx JSON {"error": ...}.

    \b
    Example:
      charclf serve --port 8000   # then open http://127.0.0.1:8000/
    """
    from charclf.server.app import require_extra, run_server

    require_extra()
    workers = thread_count(workers, batch=True)
    clf = load_model(checkpoint, device, precision, 1, backend, batch=False)  # one thread per model call
    shown = f"[{host}]" if ":" in host else host
    ready = f"serving {clf.path} on http://{shown}:{port}/ with {workers} worker(s); Ctrl-C stops"
    run_server(clf, host, port, workers, max_batch, log_level, on_ready=lambda: click.echo(ready, err=True))
