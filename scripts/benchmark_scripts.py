"""Accuracy of the shipped model on names written in their own script (tests/data/native_names.tsv),
per script, before (plain transliteration, as charclf read every name before) and after (the usual
readings of charclf.names.readings and the script evidence of charclf.predict.evidence), each step alone and both.
With --data, also the calibration (ECE) on the held-out test split of the names dataset, each name
predicted from its spelling as written in the dataset's files (accents kept), without and with the
script evidence.

    OMP_NUM_THREADS=1 python scripts/benchmark_scripts.py [--data DIR] [--write]

The tables go to stdout as Markdown: with the Japanese reader (pykakasi, the `japanese` extra)
when it is installed, and without it. --write also puts them into docs/benchmarks.md as its
section SECTION (replacing it; scripts/benchmark.py rewrites that file, so run this after it).
"""

from __future__ import annotations

import argparse
import datetime
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

import torch

from charclf.names import readings
from charclf.predict.calibration import scores
from charclf.predict.classifier import Classifier
from charclf.predict.evidence import combine
from charclf.names.text import read_name

ROOT = Path(__file__).resolve().parents[1]
NATIVE = ROOT / "tests/data/native_names.tsv"
PRETRAINED = ROOT / "charclf/pretrained/model.pt"
DOC = ROOT / "docs/benchmarks.md"
SECTION = "## Names in their own script"
EXPLAINED = """Accuracy of the shipped model (charclf/pretrained/model.pt, not retrained) on {n} real names
written in their own script (tests/data/native_names.tsv: common family names and a few full
names), by script. *plain*: the name transliterated letter by letter (anyascii), as charclf read
every name before; *readings*: the usual romanisations of charclf/names/readings.py (Hangul family
names, Arabic short vowels, Japanese readings); *script evidence*: the plain reading's
probabilities times P(script | label), renormalised (charclf/predict/evidence.py); *both*: readings and
evidence, which is what `charclf predict` does. ECE and log-loss are over all {n} names."""


def read_native(path: Path) -> list[tuple[str, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, label, script = line.split("\t")
            rows.append((name, label, script))
    return rows


def four_ways(clf: Classifier, names: list[str]) -> dict[str, torch.Tensor]:
    """(N, C) probabilities: plain transliteration; usual readings; script evidence; both (= predict)."""
    evidence = clf.evidence
    plain = clf.probabilities([read_name(n)[0] for n in names])
    usual = evidence.with_own_readings(names, clf.probabilities([readings.read(n)[0] for n in names]),
                                       clf.probabilities)
    likelihoods = torch.tensor([evidence.likelihoods(n) or [1.0] * len(clf.labels) for n in names])
    both = torch.zeros_like(plain)
    for row, p in enumerate(clf.predict(names, k=len(clf.labels))):
        for label, probability in p.top:
            both[row, clf.labels.index(label)] = probability
    return {"plain": plain, "readings": usual, "script evidence": combine(plain, likelihoods), "both": both}


def native_table(clf: Classifier, rows: list[tuple[str, str, str]]) -> list[str]:
    names = [name for name, _, _ in rows]
    targets = torch.tensor([clf.labels.index(label) for _, label, _ in rows])
    ways = four_ways(clf, names)
    groups = defaultdict(list)
    for i, (_, label, script) in enumerate(rows):
        groups[f"{script} ({label})" if script == "Han" else script].append(i)
    groups["all"] = list(range(len(rows)))
    out = ["| script | names | " + " | ".join(ways) + " |", "|---|---:|" + "---:|" * len(ways)]
    for group, members in groups.items():
        cells = [f"{(p[members].argmax(1) == targets[members]).double().mean().item():.3f}" for p in ways.values()]
        out.append(f"| {group} | {len(members)} | " + " | ".join(cells) + " |")
    out += ["", "| on all native names | " + " | ".join(ways) + " |", "|---|" + "---:|" * len(ways)]
    for measure in ("ece", "nll"):
        cells = [f"{scores(p.double(), targets, bins=10)[measure]:.4f}" for p in ways.values()]
        out.append(f"| {'ECE (10 bins)' if measure == 'ece' else 'log-loss'} | " + " | ".join(cells) + " |")
    return out


def test_split_table(clf: Classifier, data: Path) -> list[str]:
    """ECE on the test split, each name as spelt in the dataset's files, without and with the evidence."""
    from charclf.data.batches import open_source
    from charclf.data.dataset import read_label_file
    from charclf.names.readings import training_reading

    source = open_source(data, clf.alphabet, clf.checkpoint.train_config.get("seed", 0), held=("test",))
    test = set(zip(*source.held["test"]))
    spelt = {}
    for index, label in enumerate(source.labels):
        for line in read_label_file(data / f"{label}.txt"):
            key = (training_reading(line, clf.alphabet), index)
            if key in test and (key not in spelt or not line.isascii()):
                spelt[key] = line.strip()  # the accented spelling where the file has one
    pairs = sorted(spelt.items())
    names, targets = [raw for _, raw in pairs], torch.tensor([index for (_, index), _ in pairs])
    ways = four_ways(clf, names)
    accented = [i for i, name in enumerate(names) if not name.isascii()]
    out = [f"| test split ({len(names)} names, {len(accented)} accented) | network alone | with script evidence |",
           "|---|---:|---:|"]
    for what, rows in (("all: accuracy", None), ("all: ECE (15 bins)", None), ("accented: accuracy", accented)):
        cells = []
        for p in (ways["plain"], ways["both"]):
            p, t = (p, targets) if rows is None else (p[rows], targets[rows])
            cells.append(f"{scores(p.double(), t)['ece']:.4f}" if "ECE" in what
                         else f"{(p.argmax(1) == t).double().mean().item():.4f}")
        out.append(f"| {what} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=PRETRAINED)
    parser.add_argument("--names", type=Path, default=NATIVE)
    parser.add_argument("--data", type=Path, help="the names dataset, for the test-split calibration")
    parser.add_argument("--write", action="store_true", help=f"replace the section {SECTION!r} of {DOC}")
    args = parser.parse_args()
    clf = Classifier.load(args.checkpoint, device="cpu")
    if clf.evidence is None:
        raise SystemExit(f"Error: {args.checkpoint} has no script table (its labels are not the built-in 18 and it "
                         "was trained before charclf learnt one)")
    rows = read_native(args.names)
    lines = [SECTION, "", f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: "
             f"`python scripts/benchmark_scripts.py{' --data DIR' if args.data else ''}`", "",
             EXPLAINED.format(n=len(rows))]
    if readings._kakasi() is not None:
        lines += ["", f"With the Japanese reader (pykakasi {version('pykakasi')}, the `japanese` extra):", "",
                  *native_table(clf, rows)]
        readings._kakasi = lambda: None
    lines += ["", "Without the Japanese reader (kanji read as Mandarin only):", "", *native_table(clf, rows)]
    if args.data:
        lines += ["", "The held-out test split of the names dataset (split seed 0), each name as spelt in the "
                  "dataset's files (accents kept; names in plain ASCII are no evidence, so only the accented "
                  "ones can move):", "", *test_split_table(clf, args.data)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(text)


def write_section(text: str) -> None:
    """Replace (or append) SECTION of DOC: from its heading to the next `## ` heading."""
    doc = DOC.read_text(encoding="utf-8")
    start = doc.find(SECTION)
    if start < 0:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text + (doc[end:] if end >= 0 else "")
    DOC.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    main()
