"""The manual's examples: the one reader of the fenced blocks in README.md and docs/*.md, and the
one runner of their commands. tests/test_docs_examples.py checks the quick ones against the
current code on every test run; scripts/regenerate_docs.py rewrites them.

A block is marked by an HTML comment on the line just before its fence (invisible on GitHub):

    <!-- example: shipped -->           quick: run with an empty $CHARCLF_HOME, so the shipped model
                                        answers; its output must match. ", dataset" after it: the
                                        commands read the names dataset (skipped without one).
    <!-- example: long -->              a long run (training, `lab memory`): rewritten only by
                                        `regenerate_docs.py --long`, followed by a line that says
                                        which command and machine made it
    <!-- example: not run (REASON) -->  shown, never run (it needs a cluster, a GPU, a server...)
    <!-- output -->                     the printed output of the Python example just above

In a console block, `$ ` starts a command (run by bash in a scratch folder, stderr with stdout)
and the lines up to the next one are its output; a line `...` stands for any lines, so the block
keeps as many lines before and after it as it shows. A Python block runs as one script.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFRESH = "python scripts/regenerate_docs.py --quick"  # what a failing docs test tells you to run
MARKER = re.compile(r"^<!-- (example: (shipped|long|not run)(.*?)|output) -->$")
FENCE = re.compile(r"^(```|~~~)(\w*)")
ELLIPSIS = "..."
HOME_SHOWN = "~/.local/share/charclf"  # how a scratch $CHARCLF_HOME is written in the docs (its Linux default)
MADE_BY = "*Made by "  # the line after a long block starts so


@dataclass
class Block:
    path: Path
    start: int  # line index of the opening fence
    end: int  # line index of the closing fence
    lang: str
    kind: str  # "shipped", "long", "not run", "output", or "" (no marker)
    options: str  # what follows the kind in the marker (", dataset", a reason)
    body: list[str]
    output: Block | None = None  # a Python example's <!-- output --> block

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.start + 1}"

    @property
    def needs_dataset(self) -> bool:
        return "dataset" in self.options


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its marker; an output block is attached to the
    Python example before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith(opening.group(1))), len(lines))
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        kind = (marker.group(2) or "output") if marker else ""
        options = (marker.group(3) or "").strip() if marker else ""
        block = Block(path, i, end, opening.group(2), kind, options, lines[i + 1:end])
        if kind == "output" and blocks and blocks[-1].lang == "python":
            blocks[-1].output = block
        else:
            blocks.append(block)
        i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    return [block for path in markdown_files() for block in read_blocks(path)]


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """A console block as (command, shown output lines) pairs."""
    pairs: list[tuple[str, list[str]]] = []
    for line in block.body:
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs:
            pairs[-1][1].append(line)
    return pairs


def excerpt(shown: list[str], actual: list[str]) -> list[str]:
    """What the docs would show of `actual`: all of it, or, where `shown` has a `...` line, as many
    lines before and after it as `shown` has."""
    if ELLIPSIS not in shown:
        return actual
    cut = shown.index(ELLIPSIS)
    after = len(shown) - cut - 1  # the lines shown after the `...`
    return [*actual[:cut], ELLIPSIS, *(actual[len(actual) - after:] if after else [])]


def dataset() -> Path | None:
    """The names dataset the examples read: $CHARCLF_DATA, else ./data/names, when it is there."""
    path = Path(os.environ.get("CHARCLF_DATA") or ROOT / "data" / "names")
    return path if path.is_dir() else None


@dataclass
class Workspace:
    """A scratch folder the examples run in: an empty $CHARCLF_HOME (so the shipped model answers),
    data/names (the dataset), docs/examples (the example files) and docs/ for the plots they draw;
    `charclf` runs this checkout's code with this interpreter."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="charclf-docs-")))

    def __post_init__(self):
        (self.folder / "home").mkdir()
        (self.folder / "bin").mkdir()
        (self.folder / "docs").mkdir()
        (self.folder / "data").mkdir()
        (self.folder / "docs" / "examples").symlink_to(ROOT / "docs" / "examples")
        (self.folder / "charclf").mkdir()
        (self.folder / "charclf" / "pretrained").symlink_to(ROOT / "charclf" / "pretrained")
        if dataset() is not None:
            (self.folder / "data" / "names").symlink_to(dataset().resolve())
        wrapper = self.folder / "bin" / "charclf"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m charclf "$@"\n')
        wrapper.chmod(0o755)

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CHARCLF_")}
        env.update(PATH=f"{self.folder / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                   PYTHONPATH=str(ROOT), CHARCLF_HOME=str(self.folder / "home"), CHARCLF_DATA="data/names",
                   CHARCLF_THREADS="1", COLUMNS="100", PYTHONUNBUFFERED="1", NO_COLOR="1", TERM="dumb")
        return env

    def run(self, command: list[str], stdin: str | None = None, timeout: float | None = 120) -> tuple[int, list[str]]:
        """A command's exit code and output (stderr with stdout) as the docs show it: lines without
        trailing spaces, the scratch home written as the default one, no trailing empty lines."""
        done = subprocess.run(command, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=self.folder, env=self.env(), timeout=timeout)
        text = done.stdout.replace(str(self.folder / "home"), HOME_SHOWN).replace(f"{self.folder}/", "")
        text = text.replace(f"{ROOT}/", "")  # the package's own files (the shipped model) as in a checkout
        lines = [line.rstrip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        return done.returncode, lines


def run_block(block: Block, workspace: Workspace, timeout: float | None = 120) -> list[str]:
    """The block as the current code would write it (a Python example: its output block's body)."""
    if block.lang == "python":
        code, lines = workspace.run([sys.executable, "-"], stdin="\n".join(block.body) + "\n", timeout=timeout)
        if code != 0:
            raise RuntimeError(f"{block.where}: the Python example failed:\n" + "\n".join(lines[-20:]))
        return excerpt(block.output.body if block.output is not None else [], lines)
    body: list[str] = []
    for command, shown in commands(block):
        body += [f"$ {command}", *excerpt(shown, workspace.run(["bash", "-c", command], timeout=timeout)[1])]
    return body


def shown_body(block: Block) -> list[str]:
    """What the docs show for the block's result, compared line by line (trailing spaces aside)."""
    lines = block.output.body if block.lang == "python" and block.output is not None else block.body
    return [line.rstrip() for line in lines]


def drift(block: Block, workspace: Workspace) -> str | None:
    """None when the block shows what the code prints; else a diff-like message."""
    actual = run_block(block, workspace)  # a Python example that fails raises
    if block.lang == "python" and block.output is None:
        return None  # an example without shown output only has to run
    expected = shown_body(block)
    if actual == expected:
        return None
    import difflib

    diff = "\n".join(difflib.unified_diff(expected, actual, "the docs", "the code", lineterm="", n=1))
    return f"{block.where} shows output the current code does not print:\n{diff}"


def machine() -> str:
    """This machine in a few words, for the line under a long block."""
    try:
        import torch

        torch_version = f", torch {torch.__version__}"
    except ImportError:
        torch_version = ""
    return (f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()}), "
            f"Python {platform.python_version()}{torch_version}")
