"""Accuracy of the shipped model on names written in their own script (Cyrillic, Han, Hangul, ...).

The names of tests/data/native_names.tsv, per script, before (plain transliteration, as charclf
read every name before) and after (the usual readings of charclf.names.readings and the script
evidence of charclf.predict.evidence), each step alone and both. With --data, also the calibration
(ECE) on the held-out test split of the names dataset, each name predicted from its spelling as
written in the dataset's files (accents kept), without and with the script evidence.

    OMP_NUM_THREADS=1 python scripts/benchmark.py scripts [--data DIR] [--write]

The tables go to stdout as Markdown: with the Japanese reader (pykakasi, the `japanese` extra)
when it is installed, and without it. --write also puts them into docs/benchmarks.md as its section
"## Names in their own script" (replacing it; the accuracy mode rewrites that file, so run this after it).
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from charclf.config import TrainConfig
from charclf.files.locations import shipped_checkpoint
from charclf.names import readings
from charclf.names.text import read_name
from charclf.predict.calibration import scores
from charclf.predict.classifier import Classifier
from charclf.predict.evidence import combine
from charclf.predict.loading import load as load_model

from benchmarks.common import BENCHMARKS_MD, md_table, replace_section, utc_now

SECTION = "## Names in their own script"
ECE_BINS = inspect.signature(scores).parameters["bins"].default  # charclf's own, as `charclf evaluate` reports
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
    evidence, score = clf.evidence, clf.probabilities  # numpy, as the evidence works
    plain = score([read_name(n)[0] for n in names])
    usual = evidence.with_own_readings(names, score([readings.read(n)[0] for n in names]), score)
    likelihoods = np.asarray([evidence.likelihoods(n) or [1.0] * len(clf.labels) for n in names])
    both = np.zeros_like(plain)
    for row, p in enumerate(clf.predict(names, k=len(clf.labels))):
        for label, probability in p.top:
            both[row, clf.labels.index(label)] = probability
    ways = {"plain": plain, "readings": usual, "script evidence": combine(plain, likelihoods), "both": both}
    return {way: torch.from_numpy(p) for way, p in ways.items()}


def native_table(clf: Classifier, rows: list[tuple[str, str, str]]) -> list[str]:
    names = [name for name, _, _ in rows]
    targets = torch.tensor([clf.labels.index(label) for _, label, _ in rows])
    ways = four_ways(clf, names)
    groups = defaultdict(list)
    for i, (_, label, script) in enumerate(rows):
        groups[f"{script} ({label})" if script == "Han" else script].append(i)
    groups["all"] = list(range(len(rows)))
    accuracy = [[group, len(members), *(f"{(p[members].argmax(1) == targets[members]).double().mean().item():.3f}"
                                         for p in ways.values())] for group, members in groups.items()]
    calibration = [[measure, *(f"{scores(p.double(), targets, bins=10)[key]:.4f}" for p in ways.values())]
                   for key, measure in (("ece", "ECE (10 bins)"), ("nll", "log-loss"))]
    return [*md_table(["script", "names", *ways], accuracy), "",
            *md_table(["on all native names", *ways], calibration)]


def spelt_test_split(clf: Classifier, data: Path, seed: int) -> tuple[list[str], torch.Tensor]:
    """The test split's names as spelt in the dataset's files (the accented spelling where a file has one)."""
    from charclf.data.batches import open_source
    from charclf.data.dataset import read_label_file
    from charclf.names.readings import training_reading

    source = open_source(data, clf.alphabet, seed, held=("test",))
    test = set(zip(*source.held["test"], strict=True))
    spelt = {}
    for index, label in enumerate(source.labels):
        for line in read_label_file(data / f"{label}.txt"):
            key = (training_reading(line, clf.alphabet), index)
            if key in test and (key not in spelt or not line.isascii()):
                spelt[key] = line.strip()
    pairs = sorted(spelt.items())
    return [raw for _, raw in pairs], torch.tensor([index for (_, index), _ in pairs])


def test_split_table(clf: Classifier, data: Path, seed: int) -> list[str]:
    """ECE on the test split, each name as spelt in the dataset's files, without and with the evidence."""
    names, targets = spelt_test_split(clf, data, seed)
    ways = four_ways(clf, names)
    accented = [i for i, name in enumerate(names) if not name.isascii()]
    rows = []
    for what, chosen in (("all: accuracy", None), (f"all: ECE ({ECE_BINS} bins)", None),
                         ("accented: accuracy", accented)):
        cells = []
        for p in (ways["plain"], ways["both"]):
            p, t = (p, targets) if chosen is None else (p[chosen], targets[chosen])
            cells.append(f"{scores(p.double(), t)['ece']:.4f}" if "ECE" in what
                         else f"{(p.argmax(1) == t).double().mean().item():.4f}")
        rows.append([what, *cells])
    return md_table([f"test split ({len(names)} names, {len(accented)} accented)", "network alone",
                     "with script evidence"], rows)


def run(args) -> None:
    checkpoint = args.checkpoint or shipped_checkpoint()
    clf = load_model(checkpoint, device="cpu")
    if clf.evidence is None:
        raise SystemExit(f"Error: {checkpoint} has no script table (its labels are not the built-in 18 and it "
                         "was trained before charclf learnt one)")
    rows = read_native(args.names)
    lines = [SECTION, "", f"Run {utc_now()}: "
             f"`python scripts/benchmark.py scripts{' --data DIR' if args.data else ''}`", "",
             EXPLAINED.format(n=len(rows))]
    if readings._kakasi() is not None:
        lines += ["", f"With the Japanese reader (pykakasi {version('pykakasi')}, the `japanese` extra):", "",
                  *native_table(clf, rows)]
        readings._kakasi = lambda: None
    lines += ["", "Without the Japanese reader (kanji read as Mandarin only):", "", *native_table(clf, rows)]
    if args.data:
        seed = clf.checkpoint.train_config.get("seed", TrainConfig.seed)  # the split it was scored on
        lines += ["", f"The held-out test split of the names dataset (split seed {seed}), each name as spelt in the "
                  "dataset's files (accents kept; names in plain ASCII are no evidence, so only the accented "
                  "ones can move):", "", *test_split_table(clf, args.data, seed)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section(BENCHMARKS_MD, SECTION, text)
