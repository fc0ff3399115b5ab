"""`charclf export` and `charclf info`: a model as a file for other runtimes, and what a model file
is. Registered on the `charclf` group (charclf.cli.app.main); torch is imported only where a command needs it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from charclf.cli.app import check_out, checkpoint_option, main, reports_errors
from charclf.cli.params import FilePath


@main.command()
@click.argument("out", type=FilePath(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True,
              help="onnx: read by `charclf predict --checkpoint OUT` without torch (ONNX Runtime), or by any "
                   "ONNX runtime; torchscript: torch.jit.load, no charclf needed.")
@checkpoint_option
@reports_errors
def export(out, fmt, checkpoint):
    """Write a model's whole inference path as one file, OUT.

    The graph reads (letters, lengths): each name's alphabet positions, 0-padded to the longest
    (batch and length are free), and its length; it returns the calibrated probabilities and the
    raw logits. The labels, alphabet, temperature and model card go into the file's metadata.

    \b
    Examples:
      charclf export model.onnx
      charclf predict --checkpoint model.onnx Jones      # no torch needed
      charclf export --format torchscript --checkpoint runs/lstm.pt lstm.pts
    """
    from charclf.extras import available, install_hint

    if fmt == "onnx" and not available("onnx"):
        raise click.ClickException(install_hint("onnx"))
    from charclf.files.export import export_file
    from charclf.files.locations import resolve_checkpoint

    source = resolve_checkpoint(checkpoint)
    check_out(out, fmt, checkpoint, option="OUT", twins=False)
    export_file(source, out, fmt)
    click.echo(f"exported {source} to {out} ({fmt}, {out.stat().st_size:,} bytes)")


@main.command()
@checkpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print the card as one JSON object.")
@reports_errors
def info(checkpoint, as_json):
    """Show a model's card: what made it and how well it does.

    charclf and torch versions, date, backbone and sizes, parameters, labels, the training
    data's fingerprint, the split, test and validation scores, and the calibration. A .onnx file
    (from `charclf export` or training) is read without torch. What an older checkpoint does not
    record is shown as unknown.
    """
    from charclf.extras import available
    from charclf.files.locations import resolve_checkpoint
    from charclf.predict.loading import load
    from charclf.predict.onnx_runtime import is_onnx

    source = resolve_checkpoint(checkpoint)
    # Checked as prediction checks it: the card shows nothing that did not pass. A .pt is read
    # itself where torch is installed, else through its current .onnx export.
    clf = load(source, backend="torch" if not is_onnx(source) and available("torch") else "auto")
    card = card_of(clf)
    if as_json:  # json.dumps escapes what a terminal would act on
        click.echo(json.dumps({"checkpoint": str(source), **card}, indent=2))
        return
    from charclf.files.card import format_card
    from charclf.printable import printable, printable_strings

    # The card's strings come from the file: escaped, an ESC sequence or a newline in one shows as such.
    click.echo(format_card(printable_strings(card), printable(str(source))))


def card_of(clf) -> dict:
    """The card of a loaded model: a .pt checkpoint's own, or one made from an .onnx export's
    checked description, with how it was exported."""
    from charclf.files.card import card_of_checkpoint, card_of_description

    if clf.backend.name == "torch":
        return card_of_checkpoint(clf.checkpoint)
    return card_of_description(clf.checkpoint, clf.backend.card)
