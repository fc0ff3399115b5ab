"""Extra training names (`charclf train --extra-names`): public surname lists, or a folder of one's
own, mixed into a folder dataset's training names, and the off-distribution set held out of them.

A source is `mimesis` (the surname lists of the installed mimesis package's locales, each locale
given to a label by MIMESIS_LOCALES; MIT licence) or a folder of <Label>.txt files. Its names are
read as a dataset's are, each under its label (charclf.names.reader.listed_reading), deduplicated;
a name that the lists give to two labels is dropped. Then, per label:

- the off-distribution set: up to OFFDIST_PER_LABEL names (at most a fifth of the label's) that the
  dataset does not hold under any label, chosen by a hash of the name, so the same set for every
  split seed. Never trained on; scored beside validation and test.
- the pool: the label's other names, less every name of the dataset's validation and test splits,
  at most `cap` of them and at most `ratio` x the label's training names, chosen by a hash of the
  name and the split seed.

Each epoch reads round(weight x pool size) names of the pool, drawn afresh (whole copies first when
weight > 1): on average a pool name weighs `weight` times a dataset name. The n-gram baseline, fitted
in one go, weighs each pool name by `weight` exactly."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
from dataclasses import dataclass
from pathlib import Path

from charclf.data.dataset import Dataset, read_label_file
from charclf.errors import DataError
from charclf.names.reader import listed_reading

MIMESIS = "mimesis"
# charclf's label -> the mimesis locales whose surnames it takes. Irish, Scottish and Vietnamese
# have no locale; the English locales (en, en-au, en-ca, en-gb) hold one list.
MIMESIS_LOCALES = {
    "Arabic": ("ar", "ar-ae", "ar-dz", "ar-eg", "ar-jo", "ar-kw", "ar-ma", "ar-om", "ar-qa", "ar-sa", "ar-sy",
               "ar-tn", "ar-ye"),
    "Chinese": ("zh",), "Czech": ("cs",), "Dutch": ("nl", "nl-be"), "English": ("en", "en-gb"), "French": ("fr",),
    "German": ("de", "de-at", "de-ch"), "Greek": ("el",), "Italian": ("it",), "Japanese": ("ja",),
    "Korean": ("ko",), "Polish": ("pl",), "Portuguese": ("pt", "pt-br"), "Russian": ("ru",),
    "Spanish": ("es", "es-mx"),
}
OFFDIST_PER_LABEL = 150
MAX_LIST_BYTES = 16 * 2**20  # one locale's person.json (the largest is under 1 MB)


@dataclass(frozen=True)
class ExtraSpec:
    """Which extra names, and how much of them: TrainConfig's extra_* fields."""

    source: str  # "mimesis" or a folder of <Label>.txt files
    weight: float = 0.3
    cap: int = 0  # most pool names per label (0: no cap)
    ratio: float = 0.0  # most pool names per label, as a multiple of its training names (0: no limit)

    @classmethod
    def of(cls, config) -> ExtraSpec | None:
        """From a TrainConfig or its dict (a checkpoint's train_config); None without extra names."""
        get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
        if not get("extra_names"):
            return None
        return cls(get("extra_names"), get("extra_weight", 0.3), get("extra_cap", 0), get("extra_ratio", 0.0))


@dataclass(frozen=True)
class ExtraNames:
    """The extra names of one split seed: the pool trained on and the off-distribution set."""

    spec: ExtraSpec
    pool: list[tuple[str, int]]  # (name, label index), sorted
    offdist: list[tuple[str, int]]

    @property
    def per_epoch(self) -> int:
        return round(self.spec.weight * len(self.pool))

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(repr((self.spec.weight, self.pool, self.offdist)).encode())
        return h.hexdigest()[:16]

    def drawn(self, epoch: int, seed: int) -> list[tuple[str, int]]:
        """The pool names epoch `epoch` reads: whole copies, then a fresh sample for the fraction."""
        whole, rest = divmod(self.per_epoch, len(self.pool)) if self.pool else (0, 0)
        sample = random.Random(seed * 1_000_003 + epoch).sample(range(len(self.pool)), rest)
        return self.pool * whole + [self.pool[i] for i in sorted(sample)]


def extra_names(spec: ExtraSpec, dataset: Dataset, splits: dict, seed: int, alphabet: str) -> ExtraNames:
    """The source's names split into the pool (for `seed`'s split of `dataset`) and the off-distribution set."""
    listed = listed_names(spec.source, dataset.labels, alphabet)
    in_dataset = {name for name, _ in dataset.pairs}
    held_out = {name for split in ("val", "test") for name, _ in splits[split]}
    train_counts = [0] * len(dataset.labels)
    for _, label in splits["train"]:
        train_counts[label] += 1
    pool, offdist = [], []
    for label, names in listed.items():
        unseen = sorted((n for n in names if n not in in_dataset), key=lambda n: _hash(n, "offdist"))
        chosen = set(unseen[:min(OFFDIST_PER_LABEL, len(names) // 5)])
        offdist += [(name, label) for name in chosen]
        rest = sorted((n for n in names if n not in chosen and n not in held_out), key=lambda n: _hash(n, seed))
        most = [len(rest), spec.cap or len(rest), round(spec.ratio * train_counts[label]) if spec.ratio else len(rest)]
        pool += [(name, label) for name in rest[:min(most)]]
    return ExtraNames(spec, sorted(pool), sorted(offdist))


def listed_names(source: str, labels: list[str], alphabet: str) -> dict[int, list[str]]:
    """label index -> the source's names for it, read, deduplicated, without those of two labels."""
    lists = mimesis_lists() if source == MIMESIS else folder_lists(Path(source), labels)
    read: dict[int, set[str]] = {}
    for label, lines in lists.items():
        if label in labels:  # a dataset of other labels takes the ones it has
            read[labels.index(label)] = {listed_reading(line.strip(), label, alphabet) for line in lines} - {""}
    owners: dict[str, int] = {}
    for names in read.values():
        for name in names:
            owners[name] = owners.get(name, 0) + 1
    if not read:
        raise DataError(f"the extra names of {source} have none of the dataset's labels ({', '.join(labels)})")
    return {label: sorted(n for n in names if owners[n] == 1) for label, names in sorted(read.items())}


def mimesis_lists() -> dict[str, list[str]]:
    """label -> the surnames of its mimesis locales (person.json's "surnames": a list, or one per gender)."""
    spec = importlib.util.find_spec(MIMESIS)
    if spec is None or not spec.submodule_search_locations:
        from charclf.extras import install_command

        raise DataError(f"--extra-names mimesis reads the mimesis package's lists: {install_command('names')}")
    root = Path(next(iter(spec.submodule_search_locations))) / "datasets"
    lists: dict[str, list[str]] = {}
    for label, locales in MIMESIS_LOCALES.items():
        for locale in locales:
            surnames = _read_json(root / locale / "person.json").get("surnames")
            if not isinstance(surnames, (list, dict)):
                from charclf.extras import install_command

                raise DataError(f"mimesis's {locale} list has no surnames where charclf reads them (mimesis 22.2's "
                                f"layout): {install_command('names')}")
            groups = surnames.values() if isinstance(surnames, dict) else [surnames]
            lists.setdefault(label, []).extend(n for group in groups for n in group if isinstance(n, str))
    return lists


def folder_lists(folder: Path, labels: list[str]) -> dict[str, list[str]]:
    """label -> the lines of <label>.txt in `folder`; every file must be one of the dataset's labels."""
    files = sorted(p for p in folder.glob("*.txt") if p.is_file()) if folder.is_dir() else []
    if not files:
        raise DataError(f"--extra-names: {folder} is neither 'mimesis' nor a folder of <Label>.txt files")
    unknown = [p.stem for p in files if p.stem not in labels]
    if unknown:
        raise DataError(f"--extra-names: {folder} has label(s) the dataset lacks: {', '.join(unknown)} (the "
                        f"dataset's: {', '.join(labels)})")
    return {p.stem: read_label_file(p) for p in files}


def _read_json(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_LIST_BYTES + 1)
        if len(raw) > MAX_LIST_BYTES:
            raise DataError(f"{path} is larger than {MAX_LIST_BYTES // 2**20} MB: not a mimesis list")
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read the mimesis list {path}: {e}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a mimesis list (no object at its top)")
    return data


def _hash(name: str, salt) -> str:
    return hashlib.sha256(f"{salt}\t{name}".encode()).hexdigest()
