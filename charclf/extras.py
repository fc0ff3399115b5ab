"""Optional dependencies: which extra of charclf brings a missing module, said in one line."""

from __future__ import annotations

import importlib.util

# Top-level module -> (what needs it, the extra that installs it; "" for the core install).
EXTRAS = {
    "torch": ("this command needs torch", "train"),
    "matplotlib": ("plots need matplotlib", "plot"),
    "onnx": ("exporting to ONNX needs onnx", "train"),
    "onnxruntime": ("predicting needs onnxruntime (part of the core install)", ""),
    "sklearn": ("this needs scikit-learn", "bench"),
    "pandas": ("this needs pandas", "pandas"),
    "fastapi": ("charclf serve needs its optional packages", "serve"),
    "uvicorn": ("charclf serve needs its optional packages", "serve"),
    "prometheus_client": ("charclf serve needs its optional packages", "serve"),
}


def install_hint(module: str) -> str | None:
    """'plots need matplotlib: pip install 'matplotlib>=3.6' (the plot extra)' for a known optional
    module, else None."""
    top = module.split(".")[0]
    if top not in EXTRAS:
        return None
    what, extra = EXTRAS[top]
    return f"{what}: {install_command(extra, top)}"


def install_command(extra: str, module: str = "") -> str:
    """A pip command that installs `extra` today, wherever charclf came from: its requirements as
    the installed package's metadata lists them (pyproject.toml), or, in a source tree that was
    never installed, the checkout itself with the extra."""
    requirements = extra_requirements(extra, module)
    if requirements is None:
        return f"pip install -e '.[{extra}]'" if extra else "pip install -e ."
    named = f" (the {extra} extra)" if extra else ""
    return "pip install " + " ".join(f"'{r}'" if set(r) & set("<>[]; ") else r for r in requirements) + named


def extra_requirements(extra: str, module: str = "") -> list[str] | None:
    """The requirements of `extra` (for the core install, "": those of `module`'s distribution),
    from charclf's metadata; None when charclf is not installed."""
    import re
    from importlib.metadata import PackageNotFoundError, requires

    try:
        listed = requires("charclf") or []
    except PackageNotFoundError:
        return None
    found = []
    for line in listed:
        spec, _, marker = (part.strip() for part in line.partition(";"))
        if extra and re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", marker):
            found.append(spec)
        elif not extra and not marker and re.match(rf"{re.escape(module)}\b", spec):
            found.append(spec)
    return found or None


def require(module: str) -> None:
    """Raise MissingExtra, one line naming the pip command, when `module` cannot be imported."""
    if not available(module):
        from charclf.errors import MissingExtra

        raise MissingExtra(install_hint(module) or f"this needs {module}: pip install {module}")


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
