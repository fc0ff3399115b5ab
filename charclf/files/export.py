"""A checkpoint as one self-describing file for other runtimes: ONNX (read by charclf without torch,
through ONNX Runtime) or TorchScript.

The recurrent model reads packed sequences, which do not export. The exported graph reads the
padded letters and their lengths instead: each direction of each layer runs as its own one-way
RNN over the padded rows. Padding sits after each name's end, so the forward direction's outputs up
to the end are exact; the backward direction first reverses each name within its own length (a
gather), so it too starts at a real letter, and its outputs are reversed back the same way. Then
padding is masked out of the pooling. The numbers are those of the packed model."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from charclf.config import NGRAM
from charclf.errors import CheckpointError
from charclf.files.atomic import atomic_write
from charclf.files.checkpoint import Checkpoint
from charclf.models.ensemble import Ensemble, average_probabilities
from charclf.models.model import BACKBONES, NameClassifier
from charclf.models.spelling import combined

FORMATS = ("onnx", "torchscript")
INPUTS = ("letters", "lengths")  # (B, T) int64 alphabet positions, 0-padded; (B,) int64 lengths
OUTPUTS = ("probabilities", "logits")  # (B, n_classes) each: calibrated, and raw
OPSET = 17


class PaddedClassifier(nn.Module):
    """A NameClassifier's inference path over padded input: (letters, lengths) -> (probabilities, logits)."""

    def __init__(self, model: NameClassifier, temperature: float):
        super().__init__()
        config = model.config
        self.config = config
        self.embed = model.embed if config.embedding_dim else None
        self.head = model.head
        self.spelling = model.spelling  # per-label spelling heads (charclf.models.spelling), or None
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.directions = ["", "_reverse"] if config.bidirectional else [""]
        # cells[layer * directions + d]: one layer, one direction, the trained weights.
        self.cells = nn.ModuleList()
        for layer in range(config.num_layers):
            width = (config.embedding_dim or config.n_letters) if layer == 0 \
                else config.hidden_size * len(self.directions)
            for suffix in self.directions:
                cell = BACKBONES[config.arch](width, config.hidden_size, batch_first=True)
                cell.load_state_dict({f"{name}_l0": getattr(model.rnn, f"{name}_l{layer}{suffix}")
                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
                self.cells.append(cell)

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.config
        positions = torch.arange(letters.shape[1], device=letters.device)[None, :]  # (1, T)
        valid = positions < lengths[:, None]  # (B, T)
        # Position t of a name reversed within its length; padding stays where it is.
        reverse = torch.where(valid, lengths[:, None] - 1 - positions, positions)  # (B, T)
        x = self.embed(letters) if self.embed is not None else \
            nn.functional.one_hot(letters, config.n_letters).float()  # (B, T, E)
        for layer in range(config.num_layers):
            outputs = []
            for d, suffix in enumerate(self.directions):
                cell = self.cells[layer * len(self.directions) + d]
                if suffix:
                    outputs.append(_reorder(cell(_reorder(x, reverse))[0], reverse))
                else:
                    outputs.append(cell(x)[0])
            x = torch.cat(outputs, dim=2)  # (B, T, directions * H)
        logits = self.head(self._pool(x, lengths, valid))
        if self.spelling is not None:  # as NameClassifier.with_spelling
            logits = combined(logits, self.spelling.log_likelihood(x, letters, lengths), config.spelling_weight)
        return torch.softmax(logits / self.temperature, dim=1), logits

    def _pool(self, outputs: torch.Tensor, lengths: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """As NameClassifier._pool, with the padding masked out explicitly."""
        pooling, hidden = self.config.pooling, self.config.hidden_size
        outputs = outputs * valid[:, :, None].to(outputs.dtype)  # zero after each name's end
        features = []
        if pooling in ("last", "last+max"):
            last = (lengths - 1)[:, None, None].expand(-1, 1, outputs.shape[2])
            forward_state = outputs.gather(1, last)[:, 0, :hidden]  # at each name's last letter
            features.append(forward_state)
            if self.config.bidirectional:
                features.append(outputs[:, 0, hidden:])  # the backward direction ends at the first letter
        if pooling == "mean+max":
            features.append(outputs.sum(dim=1) / lengths[:, None].to(outputs.dtype))
        if pooling in ("max", "mean+max", "last+max"):
            features.append(outputs.masked_fill(~valid[:, :, None], float("-inf")).amax(dim=1))
        return torch.cat(features, dim=1)


def _reorder(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, T, F) rows taken in the order of (B, T) `index` along T."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


class PaddedEnsemble(nn.Module):
    """An Ensemble's inference path over padded input: its members' PaddedClassifiers, their
    probabilities averaged (charclf.models.ensemble)."""

    def __init__(self, members: list[PaddedClassifier], temperature: float):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, letters: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = average_probabilities([member(letters, lengths)[1] for member in self.members])
        return torch.softmax(logits / self.temperature, dim=1), logits


def padded_classifier(checkpoint: Checkpoint) -> nn.Module:
    if checkpoint.model_config.arch == NGRAM:
        raise CheckpointError("the n-gram baseline is not exported: export a recurrent model (gru, lstm, rnn)")
    model = checkpoint.build_model("cpu")
    if isinstance(model, Ensemble):
        return PaddedEnsemble([PaddedClassifier(m, 1.0) for m in model.members], checkpoint.temperature).eval()
    return PaddedClassifier(model, checkpoint.temperature).eval()


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
    module = padded_classifier(checkpoint)
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
    # also needs onnxscript) and turns each one-way nn.GRU/LSTM/RNN into one ONNX GRU/LSTM/RNN node.
    with warnings.catch_warnings():  # it announces its deprecation
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


def _torchscript_bytes(module: nn.Module, inputs: tuple, card: dict) -> bytes:
    import io
    import warnings

    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():  # deprecation notices; the shape checks it warns of hold
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, inputs, check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={"charclf_card.json": json.dumps(card)})
    return buffer.getvalue()
