#!/usr/bin/env python
"""Rewrite the manual's examples from what the current code prints (the blocks and markers:
scripts/docblocks.py).

  python scripts/regenerate_docs.py --quick    # the shipped model's examples (seconds); after the
                                               # shipped model or any output changes
  python scripts/regenerate_docs.py --long     # the long runs: training, `lab memory` (many minutes)
  python scripts/regenerate_docs.py --quick README.md docs/prediction.md   # only these files

--quick also copies the plots those examples draw into docs/ (docs/explain.png, ...). --long runs
each block in a fresh scratch folder, with one thread, and writes under it which command and
machine made it. The names dataset comes from $CHARCLF_DATA, else ./data/names.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from docblocks import (  # noqa: E402
    MADE_BY,
    ROOT,
    Block,
    Workspace,
    all_blocks,
    dataset,
    machine,
    read_blocks,
    run_block,
)


def made_by_line(load: float) -> str:
    """What the line under a long block says: the command, the machine, how busy it was, the day."""
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    return (f"{MADE_BY}`python scripts/regenerate_docs.py --long` on {machine()}, one thread per process, "
            f"load average {load:.1f} at the start, {day}.*")


def new_lines(block: Block, workspace: Workspace, long: bool) -> dict[int, list[str]]:
    """Line index -> the lines that replace it: the block's body (a Python example: its output
    block's), and for a long block the line under it."""
    load = os.getloadavg()[0]  # other work on the machine slows a long run: the line under it says how much
    body = run_block(block, workspace, timeout=None if long else 300)
    target = block.output if block.lang == "python" and block.output is not None else block
    if block.lang == "python" and block.output is None:
        return {}
    replaced = {target.start + 1: body, **{i: [] for i in range(target.start + 2, target.end)}}
    if target.start + 1 == target.end:  # an empty block: its body goes before the closing fence
        replaced = {target.end: [*body, target.path.read_text(encoding="utf-8").splitlines()[target.end]]}
    if long:
        lines = block.path.read_text(encoding="utf-8").splitlines()
        after = target.end + 1
        if after < len(lines) and lines[after].startswith(MADE_BY):
            replaced[after] = [made_by_line(load)]
        else:  # after the closing fence (and whatever else replaces that line)
            replaced[target.end] = [*replaced.get(target.end, [lines[target.end]]), made_by_line(load)]
    return replaced


def rewrite(path: Path, changes: dict[int, list[str]]) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        out += changes.get(i, [line])
    if out == lines:
        return False
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return True


def copy_plots(workspace: Workspace) -> None:
    """The plots the examples drew (--plot docs/NAME.png) replace the manual's."""
    for picture in sorted((workspace.folder / "docs").glob("*.png")):
        shutil.copyfile(picture, ROOT / "docs" / picture.name)
        print(f"regenerate_docs: docs/{picture.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--quick", action="store_true", help="the shipped model's examples")
    kind.add_argument("--long", action="store_true", help="the long runs (training, lab memory)")
    parser.add_argument("--match", metavar="TEXT", help="only the blocks whose text holds TEXT")
    parser.add_argument("files", nargs="*", type=Path, help="only these Markdown files")
    args = parser.parse_args(argv)
    wanted = "long" if args.long else "shipped"
    files = [path.resolve() for path in args.files] or None
    def chosen(block: Block) -> bool:
        return block.kind == wanted and (args.match is None or args.match in "\n".join(block.body))

    blocks = [block for block in all_blocks() if chosen(block) and (files is None or block.path in files)]
    if dataset() is None and any(block.needs_dataset or block.kind == "long" for block in blocks):
        parser.error("these examples read the names dataset: set $CHARCLF_DATA (or put it in ./data/names)")
    quick = Workspace()
    try:
        for path in sorted({block.path for block in blocks}):
            changes: dict[int, list[str]] = {}
            for block in read_blocks(path):  # read again: the file as it is now
                if chosen(block):
                    print(f"regenerate_docs: running {block.where}", flush=True)
                    workspace = Workspace() if args.long else quick  # a long run: its own scratch folder
                    changes.update(new_lines(block, workspace, args.long))
                    if args.long:
                        copy_plots(workspace)
                        shutil.rmtree(workspace.folder, ignore_errors=True)
            done = "rewritten" if rewrite(path, changes) else "unchanged"
            print(f"regenerate_docs: {path.relative_to(ROOT)} {done}")
        if args.quick:
            copy_plots(quick)
    finally:
        shutil.rmtree(quick.folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
