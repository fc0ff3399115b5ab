"""Optional dependencies: which extra of charclf brings a missing module, said in one line."""

from __future__ import annotations

import importlib.util

# Top-level module -> (what needs it, the extra that installs it).
EXTRAS = {
    "torch": ("this command needs torch", "train"),
    "matplotlib": ("plots need matplotlib", "plot"),
    "onnx": ("exporting to ONNX needs onnx", "train"),
    "onnxruntime": ("predicting needs onnxruntime (part of the core install)", "onnx"),
    "sklearn": ("this needs scikit-learn", "bench"),
}


def install_hint(module: str) -> str | None:
    """'plots need matplotlib: pip install 'charclf[plot]'' for a known optional module, else None."""
    top = module.split(".")[0]
    if top not in EXTRAS:
        return None
    what, extra = EXTRAS[top]
    return f"{what}: pip install 'charclf[{extra}]'"


def missing_hint(error: ModuleNotFoundError) -> str | None:
    """The install hint for an ImportError of an optional module (None: not one of ours)."""
    return install_hint(error.name or "")


def available(module: str) -> bool:
    """Whether `module` can be imported, without importing it (a module set to None in
    sys.modules counts as absent, as import itself does)."""
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
