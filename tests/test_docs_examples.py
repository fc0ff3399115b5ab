"""Every quick example of README.md and docs/ prints, with the current code and the shipped model,
what the docs show (scripts/docblocks.py runs them; scripts/regenerate_docs.py rewrites them).
Long runs are not run here, but must say which command and machine made them."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import docblocks  # noqa: E402
from docblocks import MADE_BY, REFRESH, Workspace, all_blocks, drift, read_blocks  # noqa: E402

BLOCKS = all_blocks()
QUICK = [block for block in BLOCKS if block.kind == "shipped"]
RUNNABLE = ("console", "python")  # what a reader would copy and run, and so what must be marked


@pytest.fixture(scope="module")
def workspace():
    space = Workspace()
    yield space
    shutil.rmtree(space.folder, ignore_errors=True)


@pytest.mark.parametrize("block", QUICK, ids=lambda block: block.where)
def test_a_quick_example_prints_what_the_docs_show(block, workspace):
    if block.needs_dataset and docblocks.dataset() is None:
        pytest.skip("no names dataset ($CHARCLF_DATA or ./data/names)")
    problem = drift(block, workspace)
    assert problem is None, f"{problem}\nIf the code's new output is right, refresh the docs: {REFRESH}"


def test_every_runnable_block_is_marked():
    unmarked = [block.where for block in BLOCKS if block.lang in RUNNABLE and not block.kind]
    assert not unmarked, ("mark each block <!-- example: shipped -->, <!-- example: long --> or "
                          f"<!-- example: not run (why) --> (scripts/docblocks.py): {unmarked}")


def test_a_quick_example_says_the_shipped_model_made_it():
    silent = []
    for block in QUICK:
        lines = block.path.read_text(encoding="utf-8").splitlines()
        before = " ".join(lines[max(0, block.start - 8):block.start]).lower()
        if not any(words in before for words in ("shipped model", "shipped one", "reads no model")):
            silent.append(block.where)
    assert not silent, f"say in the lines before each quick example that the shipped model answers: {silent}"


def test_a_long_example_says_which_command_and_machine_made_it():
    unsaid = []
    for block in (block for block in BLOCKS if block.kind == "long"):
        lines = block.path.read_text(encoding="utf-8").splitlines()
        end = block.output.end if block.output is not None else block.end
        if end + 1 >= len(lines) or not lines[end + 1].startswith(MADE_BY):
            unsaid.append(block.where)
    assert not unsaid, f"each long example needs its '{MADE_BY}...' line (python scripts/regenerate_docs.py --long): " \
                       f"{unsaid}"


def test_drift_is_caught_and_an_excerpt_kept(tmp_path, workspace, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("The shipped model:\n<!-- example: shipped -->\n```console\n$ echo one; echo two; echo three\n"
                    "one\n...\nthree\n```\n\n<!-- example: shipped -->\n```console\n$ echo right\nwrong\n```\n\n"
                    "<!-- example: shipped -->\n```python\nprint(6 * 7)\n```\n<!-- output -->\n```\n42\n```\n")
    monkeypatch.setattr(docblocks, "ROOT", tmp_path)
    kept, drifted, python = read_blocks(page)
    assert drift(kept, workspace) is None
    assert "-wrong" in drift(drifted, workspace) and "+right" in drift(drifted, workspace)
    assert python.output is not None and drift(python, workspace) is None
    python.output.body = ["41"]
    assert drift(python, workspace) is not None


def test_regenerating_rewrites_the_output_and_says_what_made_a_long_run(tmp_path, workspace, monkeypatch):
    import regenerate_docs

    page = tmp_path / "page.md"
    page.write_text("The shipped model:\n<!-- example: shipped -->\n```console\n$ echo new\nold\n```\n\n"
                    "<!-- example: long -->\n```python\nprint(6 * 7)\n```\n<!-- output -->\n```text\n```\nafter\n")
    monkeypatch.setattr(docblocks, "ROOT", tmp_path)
    for _ in range(2):  # twice: the second run replaces the line under the long block, never adds one
        for block in read_blocks(page):
            regenerate_docs.rewrite(page, regenerate_docs.new_lines(block, workspace, long=block.kind == "long"))
    lines = page.read_text().splitlines()
    assert lines[3:5] == ["$ echo new", "new"]
    assert lines[-5:-3] == ["```text", "42"] and lines[-2].startswith(MADE_BY) and lines[-1] == "after"
    assert all(drift(block, workspace) is None for block in read_blocks(page))
