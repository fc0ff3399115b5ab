"""Hostile and broken checkpoint files, made from a real one (tests and scripts/hardening_cases.sh),
and the CLI runner and one-line-refusal check the hostile-input tests share.

Each maker takes a valid checkpoint file `good` and writes a damaged copy to `path`."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import torch
from click.testing import CliRunner

from charclf.cli import main


def _payload(good: Path) -> dict:
    return torch.load(good, map_location="cpu", weights_only=True)


def mutated(good: Path, path: Path, change) -> Path:
    """A copy of `good` whose payload went through change(payload)."""
    payload = _payload(good)
    change(payload)
    torch.save(payload, path)
    return path


def zip_bomb(good: Path, path: Path, inflated: int = 2 << 30) -> Path:
    """`good` with its first tensor entry replaced by `inflated` zero bytes, deflated: a file of
    a few MB whose entry declares (and inflates to) `inflated` bytes."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            if info.filename.endswith("/data/0"):
                target = zipfile.ZipInfo(info.filename)
                target.compress_type = zipfile.ZIP_DEFLATED
                with out.open(target, "w", force_zip64=True) as entry:
                    chunk = bytes(1 << 24)
                    for _ in range(inflated // len(chunk)):
                        entry.write(chunk)
                    entry.write(bytes(inflated % len(chunk)))
            else:
                out.writestr(info, src.read(info))
    return path


def code_running_pickle(path: Path, marker: Path) -> Path:
    """A torch file whose unpickling would create `marker`."""

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": 2, "model": Evil()}, path)
    return path


def sparse_weights(good: Path, path: Path) -> Path:
    def change(payload):
        key = next(iter(payload["model"]))
        payload["model"][key] = payload["model"][key].to_sparse()
    return mutated(good, path, change)


def raw_pickle(good: Path, path: Path) -> Path:
    """The payload pickled by the standard library, not torch.save's zip archive."""
    payload = {k: v for k, v in _payload(good).items() if k != "model"}
    path.write_bytes(pickle.dumps(payload))
    return path


def png(path: Path) -> Path:
    """A real PNG (any file that is not a checkpoint)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.figure(figsize=(1, 1)).savefig(buffer, format="png")
    path.write_bytes(buffer.getvalue())
    return path


# --- .onnx files (need the onnx package) --------------------------------------------------


def onnx_with(good: Path, path: Path, description: dict | str | None = None, **metadata: str) -> Path:
    """A copy of the .onnx `good` whose charclf.description is `description` (a dict: merged into
    the stored one; a str: as it is) and whose other metadata entries are `metadata`."""
    import json

    import onnx

    model = onnx.load(str(good))
    props = {prop.key: prop for prop in model.metadata_props}
    if isinstance(description, dict):
        description = json.dumps({**json.loads(props["charclf.description"].value), **description})
    if description is not None:
        props["charclf.description"].value = description
    for key, value in metadata.items():
        props[key].value = value
    onnx.save(model, str(path))
    return path


def onnx_relabelled(good: Path, path: Path, first: list[str]) -> Path:
    """A copy of the .onnx `good` whose first labels are renamed `first` (its script table too)."""
    import json

    import onnx

    stored = json.loads(next(p.value for p in onnx.load(str(good)).metadata_props if p.key == "charclf.description"))
    names = dict(zip(stored["labels"], first))
    table = stored.get("scripts", {}).get("probabilities", {})
    scripts = {**stored.get("scripts", {}), "probabilities": {names.get(k, k): v for k, v in table.items()}}
    return onnx_with(good, path, {"labels": [names.get(label, label) for label in stored["labels"]],
                                  "scripts": scripts})


def foreign_onnx(good: Path, path: Path) -> Path:
    """A graph that is not charclf's (Identity on floats) carrying `good`'s charclf metadata."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    for prop in onnx.load(str(good)).metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)
    onnx.save(model, str(path))
    return path


def hungry_onnx(good: Path, path: Path, floats_per_letter: int = 16 * 10**9) -> Path:
    """`good` whose logits also depend on a tensor of lengths[0] * floats_per_letter floats (64 GB a
    letter by default), made at run time (never folded into the file)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(good))
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["logits_raw" if o == "logits" else o for o in node.output]
        node.input[:] = ["logits_raw" if i == "logits" else i for i in node.input]
    graph.initializer.extend([helper.make_tensor("per_letter", TensorProto.INT64, [1], [floats_per_letter]),
                              helper.make_tensor("s0", TensorProto.INT64, [1], [0]),
                              helper.make_tensor("s1", TensorProto.INT64, [1], [1]),
                              helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph.node.extend([helper.make_node("Slice", ["lengths", "s0", "s1"], ["first"]),
                       helper.make_node("Mul", ["first", "per_letter"], ["shape"]),
                       helper.make_node("ConstantOfShape", ["shape"], ["huge"], value=one),
                       helper.make_node("ReduceSum", ["huge"], ["total"], keepdims=0),
                       helper.make_node("Mul", ["total", "zero"], ["nothing"]),
                       helper.make_node("Add", ["logits_raw", "nothing"], ["logits"])])
    onnx.save(model, str(path))
    return path


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def refused(result, message, code=1):
    """Exit `code`, no traceback, and one line on stderr holding `message`."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    return result
