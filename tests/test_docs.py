"""The documentation holds together: a short README that names the two commands, links and images
that point to files (and headings) that exist, and a manual index that lists every page.
Standard library only; reads files, runs nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"
README_MAX_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) and ![alt](target); the target may carry a "title" after a space.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def without_code(text: str) -> str:
    """The text with fenced code blocks and inline code spans blanked out."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(without_code(path.read_text(encoding="utf-8")))


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) is not None  # http:, https:, mailto:, ...


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower-cased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links() -> list[tuple[Path, str]]:
    return [(path, target) for path in markdown_files() for target in links(path)
            if target and not is_external(target)]


def test_the_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"


def test_the_readme_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    for command in ("bash scripts/run.sh", "bash scripts/test.sh"):
        assert command in text, f"README.md should name `{command}`"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files_that_exist(path):
    broken = []
    for target in links(path):
        if not target or is_external(target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0].split("?", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {broken}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_point_to_headings_that_exist(path):
    broken = []
    for target in links(path):
        if is_external(target) or "#" not in target:
            continue
        file, anchor = target.split("#", 1)
        page = (path.parent / file) if file else path
        if page.suffix == ".md" and page.exists() and anchor not in anchors(page):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)} links to missing headings: {broken}"


def test_the_index_lists_every_page():
    listed = {(INDEX.parent / target.split("#", 1)[0]).resolve()
              for target in links(INDEX) if target and not is_external(target)}
    pages = {page.resolve() for page in DOCS.glob("*.md") if page != INDEX}
    missing = sorted(page.name for page in pages - listed)
    assert not missing, f"docs/index.md should link {missing}"


def test_the_checks_catch_what_they_look_for():
    text = "see [a](a.md#x) and ![img](b.png \"t\") `[not](c.md)`\n```\n[nor](d.md)\n```\n[web](https://e.org)"
    assert LINK.findall(without_code(text)) == ["a.md#x", "b.png", "https://e.org"]
    assert is_external("https://e.org") and is_external("mailto:x@y.z") and not is_external("docs/a.md")
    assert slug("Tables: --csv") == "tables---csv"
    assert slug("Light inference: torch against ONNX Runtime (`charclf export`)") == \
        "light-inference-torch-against-onnx-runtime-charclf-export"
    assert slug("Refitting on train + validation") == "refitting-on-train--validation"
