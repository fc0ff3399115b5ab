"""A checkpoint as one self-describing file for other runtimes: ONNX (read by charclf without torch,
through ONNX Runtime) or TorchScript.

Export traces the model itself: its forward(letters, lengths) reads padded letters and their
lengths, and packs them, which the ONNX exporter turns into one ONNX GRU/LSTM/RNN node per layer
that is given each name's length (sequence_lens): no direction reads padding, so the numbers are
those of the model in torch."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from charclf.config import NGRAM
from charclf.errors import CheckpointError
from charclf.files.atomic import atomic_write
from charclf.files.checkpoint import Checkpoint

FORMATS = ("onnx", "torchscript")
INPUTS = ("letters", "lengths")  # (B, T) int64 alphabet positions, 0-padded; (B,) int64 lengths
OUTPUTS = ("probabilities", "logits")  # (B, n_classes) each: calibrated, and raw
OPSET = 17


class Exported(nn.Module):
    """What the exported graph computes: the model's own forward, (letters, lengths) -> logits, and
    its calibrated probabilities beside them."""

    def __init__(self, model: nn.Module, temperature: float):
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(letters, lengths)
        return torch.softmax(logits / self.temperature, dim=1), logits


def exported(checkpoint: Checkpoint) -> Exported:
    """The checkpoint's model, as export traces it (on the CPU, in eval mode)."""
    if checkpoint.model_config.arch == NGRAM:
        raise CheckpointError("the n-gram baseline is not exported: export a recurrent model (gru, lstm, rnn)")
    return Exported(checkpoint.build_model("cpu"), checkpoint.temperature).eval()


def example_inputs(checkpoint: Checkpoint) -> tuple[torch.Tensor, torch.Tensor]:
    """Two names of different lengths, so that no size is fixed by the example."""
    from charclf.data.tensors import index_batch

    return index_batch(["Jones", "Nakamura"], checkpoint.alphabet)


ONNX_FORMAT = 1  # the metadata's layout (charclf.predict.onnx_runtime reads it)


def metadata(checkpoint: Checkpoint, card: dict, source: str = "") -> dict[str, str]:
    """What a runtime needs besides the graph, as string key/value pairs: charclf's own (the format,
    the checked description, the sha256 of the .pt it came from, how it was exported), and the
    labels, alphabet, lower-casing, temperature and card one by one, for other runtimes."""
    return {
        "charclf.format": str(ONNX_FORMAT),
        "charclf.description": checkpoint.description.to_json(),
        "charclf.source": source,
        "charclf.exported": json.dumps(card.get("exported", {})),
        "charclf.labels": json.dumps(checkpoint.labels),
        "charclf.alphabet": checkpoint.alphabet,
        "charclf.lowercase": json.dumps(checkpoint.model_config.lowercase),
        "charclf.temperature": repr(checkpoint.temperature),
        "charclf.inputs": json.dumps(INPUTS),
        "charclf.training.outputs": json.dumps(OUTPUTS),
        "charclf.files.card": json.dumps(card),
        "charclf.names.scripts": json.dumps(checkpoint.scripts or {}),  # P(script | label) (charclf.predict.evidence)
    }


def export(checkpoint: Checkpoint, card: dict, out: Path, fmt: str = "onnx", source: str = "") -> None:
    """Write `checkpoint` to `out` as `fmt` (see FORMATS), atomically; `source`: the sha256 of the
    .pt file it was read from (an .onnx beside its .pt is used in its place only while they match)."""
    module = exported(checkpoint)
    inputs = example_inputs(checkpoint)
    if fmt == "onnx":
        data = _onnx_bytes(module, inputs, metadata(checkpoint, card, source))
    elif fmt == "torchscript":
        data = _torchscript_bytes(module, inputs, card)
    else:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(out), lambda f: f.write(data))
    except OSError as e:
        raise CheckpointError(f"cannot write {out}: {e.strerror or e}") from None


def export_file(source: Path, out: Path, fmt: str = "onnx") -> None:
    """Export the checkpoint file `source` to `out`, with its card and how it was exported."""
    import hashlib

    from charclf.files.card import card_of_checkpoint, charclf_version, utc_now
    from charclf.files.checkpoint import load_checkpoint

    loaded = load_checkpoint(source)
    with open(source, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    exported = {"format": fmt, "from": Path(source).name, "charclf_version": charclf_version(), "date": utc_now()}
    export(loaded, {**card_of_checkpoint(loaded), "exported": exported}, out, fmt, source=sha256)


def onnx_beside(checkpoint: Path) -> Path:
    """Where `charclf train` writes a checkpoint's ONNX export, and where prediction looks for it."""
    return Path(checkpoint).with_suffix(".onnx")


def _onnx_bytes(module: nn.Module, inputs: tuple, meta: dict[str, str]) -> bytes:
    import io
    import warnings

    import onnx

    buffer = io.BytesIO()
    # The TorchScript-based exporter (dynamo=False): it needs only the onnx package (the dynamo one
    # also needs onnxscript) and turns each packed nn.GRU/LSTM/RNN into one ONNX GRU/LSTM/RNN node.
    with warnings.catch_warnings(), _native_stderr_hidden():  # it announces its deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, inputs, buffer, input_names=list(INPUTS), output_names=list(OUTPUTS), opset_version=OPSET,
            dynamic_axes={"letters": {0: "batch", 1: "length"}, "lengths": {0: "batch"},
                          "probabilities": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = "charclf name classifier: " + meta["charclf.files.card"]
    onnx.checker.check_model(model)
    return model.SerializeToString()


@contextmanager
def _native_stderr_hidden():
    """The exporter's C++ half prints warnings straight to file descriptor 2, past Python's filters
    (that packed sequences have no shape inference: the RNN node they become has): hidden while it
    runs. Its errors are Python exceptions, which this does not touch."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _torchscript_bytes(module: nn.Module, inputs: tuple, card: dict) -> bytes:
    import io
    import warnings

    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():  # deprecation notices; the shape checks it warns of hold
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, inputs, check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={"charclf_card.json": json.dumps(card)})
    return buffer.getvalue()
