"""The package's shape: each wing (subpackage) imports only from itself and the wings below it,
and no modules import each other in a circle, at module level or inside functions; and no Python
file of the package, the scripts or the tests is over MAX_LINES lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "charclf"

# From the ground up: a module may import from its own wing and from any wing before it.
LAYERS = ["ground", "names", "data", "models", "files", "report", "predict", "spark", "dask", "training", "lab",
          "server", "cli"]
# The most lines a .py file under these folders may have: past that, a reader wants it split.
MAX_LINES = 400
CHECKED_FOLDERS = ("charclf", "scripts", "tests")
# The package's doors: `charclf` itself (the public API, which loads its names lazily from the
# wings), `python -m charclf` (the command line) and `python -m charclf.spark` (Spark's command
# line, whose options are the command line's own types) stand above every wing.
DOORS = {"charclf", "charclf.__main__", "charclf.spark.__main__"}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(module: str, path: Path, modules: dict[str, Path], lazy: bool) -> set[str]:
    """The package's modules that `module` imports (at module level only, unless `lazy`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = ast.walk(tree) if lazy else (
        inner for node in tree.body
        for inner in (ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package `level` steps up
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules and name != module}


def long_files(folders: list[Path], limit: int = MAX_LINES) -> list[str]:
    """"<path>: <n> lines" for each .py file under `folders` longer than `limit` lines (paths from
    each folder's parent)."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                found.append(f"{path.relative_to(folder.parent)}: {lines} lines")
    return found


def wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "ground"


def graph(lazy: bool) -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported(name, path, modules, lazy) for name, path in modules.items()}


def circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a list of modules that ends where it starts), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_every_wing_is_a_known_layer_and_says_its_job():
    wings = {wing(name) for name in module_files()}
    assert wings == set(LAYERS), wings ^ set(LAYERS)
    for name in LAYERS[1:]:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "\n" not in doc.strip(), f"charclf/{name}/__init__.py should say its job in one line"


@pytest.mark.parametrize("lazy", [False, True], ids=["module level", "inside functions too"])
def test_no_import_circles(lazy):
    assert circle(graph(lazy)) is None, " -> ".join(circle(graph(lazy)))


def test_imports_flow_down_the_layers():
    upward = []
    for module, targets in graph(lazy=True).items():
        if module in DOORS:
            continue
        for target in sorted(targets):
            if target not in DOORS and LAYERS.index(wing(target)) > LAYERS.index(wing(module)):
                upward.append(f"{module} ({wing(module)}) imports {target} ({wing(target)})")
    assert not upward, "\n".join(upward)


def test_the_checks_catch_what_they_look_for():
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b"}, "b": set()}) is None
    assert wing("charclf.errors") == "ground" and wing("charclf.models.model") == "models"
    assert wing("charclf.cli") == "cli"


def test_no_python_file_is_over_the_line_limit():
    found = long_files([PACKAGE.parent / folder for folder in CHECKED_FOLDERS])
    assert not found, f"over {MAX_LINES} lines (split them where a reader would):\n" + "\n".join(found)


def test_the_line_limit_catches_a_long_file(tmp_path):
    (tmp_path / "pkg" / "inner").mkdir(parents=True)
    (tmp_path / "pkg" / "inner" / "long.py").write_text("x = 1\n" * 401, encoding="utf-8")
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * 400, encoding="utf-8")
    assert long_files([tmp_path / "pkg"]) == ["pkg/inner/long.py: 401 lines"]


def test_the_public_api_is_whole_with_every_wing_loaded():
    """Loading the wings never shadows a public name (`charclf.train` stays the function, though
    `charclf.training` is a package), and every name in __all__ resolves."""
    import importlib

    import charclf

    for module in module_files():
        if module != "charclf.__main__":
            importlib.import_module(module)
    assert callable(charclf.train) and charclf.train.__module__ == "charclf.training.api"
    assert callable(charclf.load) and charclf.Classifier.__name__ == "Classifier"
    for name in charclf.__all__:
        assert getattr(charclf, name) is not None, name
