"""charclf: guess a name's language of origin from its spelling with a character-level RNN.

The Python API (the CLI calls the same functions)::

    import charclf

    clf = charclf.load()                        # the model `charclf train` last wrote, else the shipped one
    clf = charclf.load("runs/lstm.pt")          # through ONNX Runtime when runs/lstm.onnx is its export
    clf = charclf.load("runs/lstm.pt", backend="torch", device="cuda")
    for p in clf.predict(["Hinton", "Satoshi"], k=3):
        print(p.name, p.top)                    # Hinton [('English', 0.95...), ('Scottish', 0.01...), ...]

    result = charclf.train(out="runs/gru.pt", arch="gru", epochs=12)   # the dataset: $CHARCLF_DATA, else ./data/names
    print(result.metrics["test"])               # {'accuracy': ..., 'macro_f1': ..., 'n': ...} (needs the train extra)

    clf.evaluate("data/names", split="test")    # accuracy, macro_f1, per_label, confusion

Importing charclf is cheap: ONNX Runtime or torch loads on first use of a name that needs it, and
prediction needs no torch at all.
"""

from importlib import import_module

from charclf.config import ModelConfig, TrainConfig
from charclf.errors import CharclfError, CheckpointError, DataError, DeviceError, FetchError

# Public name -> module that defines it (imported on first access, so `import charclf` and
# `charclf --help` do not pay for torch).
_LAZY = {
    "Classifier": "charclf.predict.classifier",
    "Prediction": "charclf.predict.prediction",
    "TrainResult": "charclf.training.train",
    "train": "charclf.training.api",
    "fetch_dataset": "charclf.data.fetch",
    "predict_dataframe": "charclf.predict.frames",
}

__all__ = ["__version__", "load", "ModelConfig", "TrainConfig", "CharclfError", "CheckpointError", "DataError",
           "DeviceError", "FetchError", *_LAZY]


def load(path=None, device="auto", threads=1, precision=None, backend="auto"):
    """Load a model as a Classifier (default: the model `charclf train` last wrote, else the
    pretrained model that ships with charclf). A .onnx file, or a .pt checkpoint with its current
    .onnx export beside it, runs on ONNX Runtime with `threads` threads, without torch; otherwise,
    or with backend="torch", a GPU `device` or a bfloat16 `precision`, torch runs the .pt
    (charclf.predict.loading). The answers are the same either way."""
    from charclf.predict.loading import load as load_model

    return load_model(path, device=device, precision=precision, threads=threads, backend=backend)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # 30 ms: only when asked

    try:
        return version("charclf")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def __getattr__(name):
    if name == "__version__":
        return _version()
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'charclf' has no attribute {name!r}")
