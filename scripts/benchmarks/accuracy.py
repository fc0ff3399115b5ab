"""charclf's models against their peers on one machine, in one run, on charclf's own split.

Systems (names for --only), in this order:

  gru              charclf's default model, the bidirectional GRU
  gru-3            charclf --members 3: three default GRUs, their probabilities averaged
  best             charclf --preset best: one default GRU that learnt from an ensemble of five
                   (charclf.training.recipes.train_best; the model charclf ships)
  lstm, rnn        charclf's other recurrent backbones
  ngram            charclf --model ngram: its n-gram baseline, no network
                   (all five: charclf.train() with charclf.config.defaults_for(arch, seed=seed), nothing else)
  logreg           TF-IDF character 1-5-grams (char_wb) + LogisticRegression(C=30), scikit-learn,
                   fitted on the train split
  logreg-trainval  the same, fitted on train + validation (it does no model selection, so the
                   validation split is free training data: the fair-use variant of the protocol)
  tutorial         the PyTorch tutorial's char-RNN: charclf --preset tutorial (charclf.training.recipes)
  majority         always the most frequent training label
  gru-names, best-names, logreg-names, logreg-trainval-names
                   the same, also trained on the extra names of --extra-names (charclf.data.extra:
                   mimesis's surname lists, or a folder), with --extra-weight, --extra-cap and
                   --extra-ratio; with --extra-names every system is also scored on their
                   off-distribution set

Every system but majority runs in a fresh process of this program (`accuracy --child SYSTEM`, so that
its peak memory is its own), with --threads threads, and reports back as one JSON line on stdout. The
split is the README's held-out protocol (charclf.data.dataset.split_dataset); charclf's models are
also scored by name length, by their conformal label sets, and (the recurrent ones) in bfloat16.
Writes a markdown report and a JSON file of every result:

  python scripts/benchmark.py accuracy                  # everything, split seed 0 -> docs/benchmarks.md (+ .json)
  python scripts/benchmark.py accuracy --seeds 0,1,2    # per-seed rows and their mean
  python scripts/benchmark.py accuracy --quick --out /tmp/bench-quick.md   # smoke test (no --out: writes nothing)

scikit-learn is needed for logreg and logreg-trainval: pip install -e ".[bench]".
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from charclf.threads import usable_cores

from benchmarks.accuracy_report import build_report, with_other_sections
from benchmarks.accuracy_systems import (
    INFER_NAMES,
    QUICK_INFER_NAMES,
    SYSTEMS,
    WITH_NAMES,
    child_charclf,
    child_logreg,
    log,
    read_json,
    scored_parts,
)
from benchmarks.common import (
    BENCHMARKS_MD,
    DRIVER,
    UsageError,
    data_dir,
    dataset_lines,
    distinct_names,
    load_average,
    thread_env,
)


def child_main(args) -> int:
    if args.child not in SYSTEMS or args.child == "majority" or args.workdir is None:
        raise UsageError(f"--child must be one of {', '.join(SYSTEMS[:-1])}, with --workdir")
    real_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the JSON answer only
            split = read_json(args.workdir / f"split-seed{args.seed}.json")
            names = read_json(args.workdir / "inference-names.json")
            if not args.child.startswith("logreg"):  # (the logistic regression's process imports no torch)
                import torch

                torch.set_num_threads(args.threads)
            child = child_logreg if args.child.startswith("logreg") else child_charclf
            result = child(args, split, names)
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1
    result.update(system=args.child, seed=args.seed, threads=args.threads)
    print(json.dumps(result), file=real_stdout, flush=True)
    return 0


# ----------------------------------------------------------------------------- parent


def run_child(system: str, seed: int, args, workdir: Path) -> dict:
    command = [sys.executable, str(DRIVER), "accuracy", "--child", system, "--seed", str(seed), "--data",
               str(args.data), "--workdir", str(workdir), "--threads", str(args.threads), *["--quick"] * args.quick]
    if args.keep_models:
        command += ["--keep-models", str(args.keep_models.resolve())]
    process = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=thread_env(args.threads))
    if process.returncode == 130:
        raise KeyboardInterrupt
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    if process.returncode != 0 or not lines:
        return {"system": system, "seed": seed, "error": f"exit code {process.returncode}"}
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"system": system, "seed": seed, "error": "no JSON result"}


def run_majority(split: dict, seed: int) -> dict:
    from collections import Counter

    started = time.perf_counter()
    majority = Counter(label for _, label in split["train"]).most_common(1)[0][0]
    return {"system": "majority", "seed": seed, **scored_parts(split, lambda names: [majority] * len(names)),
            "train_seconds": time.perf_counter() - started, "names_per_second": None, "peak_train_mb": None,
            "details": {"label": split["labels"][majority]}}


def extra_spec(args):
    """--extra-names and its options -> charclf.data.extra.ExtraSpec (None without --extra-names)."""
    from charclf.data.extra import ExtraSpec

    if not args.extra_names:
        return None
    return ExtraSpec(args.extra_names, args.extra_weight, args.extra_cap, args.extra_ratio)


def prepare_data(args, workdir: Path) -> dict[int, dict]:
    """Write each seed's split (with --extra-names: its pool of extra names, the off-distribution set and
    the options) and the inference names for the children; return the split sizes."""
    from charclf.data.dataset import load_dataset, split_dataset
    from charclf.data.extra import extra_names
    from charclf.names.text import DEFAULT_ALPHABET

    dataset, spec = load_dataset(args.data), extra_spec(args)
    names = distinct_names(dataset_lines(args.data), QUICK_INFER_NAMES if args.quick else INFER_NAMES)
    (workdir / "inference-names.json").write_text(json.dumps(names), encoding="utf-8")
    sizes = {}
    for seed in args.seeds:
        splits = split_dataset(dataset, seed=seed)
        split = {"labels": dataset.labels, **{k: [list(p) for p in v] for k, v in splits.items()}}
        if spec is not None:
            extra = extra_names(spec, dataset, splits, seed, DEFAULT_ALPHABET)
            split.update(extra=[list(p) for p in extra.pool], offdist=[list(p) for p in extra.offdist],
                         extra_options={"extra_names": spec.source, "extra_weight": spec.weight,
                                        "extra_cap": spec.cap, "extra_ratio": spec.ratio})
        (workdir / f"split-seed{seed}.json").write_text(json.dumps(split), encoding="utf-8")
        sizes[seed] = {"labels": len(dataset.labels), **{k: len(v) for k, v in splits.items()},
                       **({"extra": len(split["extra"]), "offdist": len(split["offdist"])} if spec else {})}
    log(f"data: {args.data} ({len(dataset.labels)} labels, {len(dataset.pairs):,} pairs); "
        + "; ".join(f"seed {s}: {v['train']:,} / {v['val']:,} / {v['test']:,}" for s, v in sizes.items()))
    return sizes


def run_all(args, workdir: Path) -> dict[int, dict[str, dict]]:
    """Every (seed, system), --jobs of them at once (the longest, --preset best, started first)."""
    from concurrent.futures import ThreadPoolExecutor

    results: dict[int, dict[str, dict]] = {seed: {} for seed in args.seeds}
    runs = sorted(((seed, system) for seed in args.seeds for system in args.systems),
                  key=lambda run: not run[1].startswith("best"))  # stable: otherwise in the usual order
    total = len(runs)

    def one(numbered: tuple[int, tuple[int, str]]) -> None:
        done, (seed, system) = numbered
        began = time.perf_counter()
        log(f"[{done}/{total}] seed {seed}: {system} ...")
        r = results[seed][system] = (run_majority(read_json(workdir / f"split-seed{seed}.json"), seed)
                                     if system == "majority" else run_child(system, seed, args, workdir))
        offdist = f", off-distribution {r['offdist_accuracy']:.4f}" if "offdist_accuracy" in r else ""
        log(f"[{done}/{total}] seed {seed}: {system}" + (f" FAILED ({r['error']})" if "error" in r else
            f": accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}{offdist}, training "
            f"{r['train_seconds']:.1f} s ({time.perf_counter() - began:.1f} s in all)"))

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, enumerate(runs, start=1)))
    return results


def machine_description(threads: int) -> list[tuple[str, str]]:
    import importlib.metadata

    import torch

    from charclf.predict.precision import native_bfloat16

    cpu, sklearn_version, ram = "", "not installed", "unknown"
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        sklearn_version = importlib.metadata.version("scikit-learn")
    with contextlib.suppress(ValueError, OSError, AttributeError):  # no sysconf: not Unix
        ram = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"
    return [
        ("CPU", cpu or platform.processor() or platform.machine()),
        ("cores", f"{os.cpu_count()} ({usable_cores()} usable by this process)"),
        ("threads", f"{threads} per system (--threads): torch.set_num_threads in the torch runs, threadpoolctl "
                    f"limits for scikit-learn, CHARCLF_THREADS and OMP_NUM_THREADS for `predict --file`"),
        ("RAM", ram),
        ("load average", f"{load_average()} (1, 5, 15 min, at the start)"),
        ("bfloat16 instructions (AVX512-BF16 or AMX)", "yes" if native_bfloat16() else "no: torch emulates them"),
        ("Python", platform.python_version()), ("torch", str(torch.__version__)),
        ("scikit-learn", sklearn_version), ("OS", platform.platform()),
    ]


def chosen_systems(only: str | None, extra_names: str | None = None) -> list[str]:
    """--only's systems in SYSTEMS' order (all by default); scikit-learn is checked for the logreg ones."""
    wanted = [s.strip() for s in (only or ",".join(SYSTEMS)).split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SYSTEMS]
    if unknown or not wanted:
        raise UsageError(f"--only: unknown system(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(SYSTEMS)}")
    systems = [s for s in SYSTEMS if s in wanted]
    if any(s in WITH_NAMES for s in systems) and not extra_names:
        raise UsageError(f"--only: {', '.join(s for s in systems if s in WITH_NAMES)} train on the extra names: "
                         "give --extra-names")
    if any(s.startswith("logreg") for s in systems) and importlib.util.find_spec("sklearn") is None:
        raise UsageError('logreg needs scikit-learn: pip install -e ".[bench]" (or leave it out with --only)')
    return systems


def run(args) -> int:
    from charclf.errors import CharclfError

    args.systems = None if args.child else chosen_systems(args.only, args.extra_names)
    args.data = data_dir(args.data)
    if args.child:
        return child_main(args)
    command = "python " + shlex.join(sys.argv)
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    machine = machine_description(args.threads) + [("systems at once (--jobs)", str(args.jobs))]
    with tempfile.TemporaryDirectory(prefix="charclf-bench-") as tmp:
        try:
            sizes = prepare_data(args, Path(tmp))
        except CharclfError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        results = run_all(args, Path(tmp))
    document, summary, record = build_report(args, results, sizes, machine, started, command)
    print(summary)
    out = args.out or (None if args.quick else BENCHMARKS_MD)
    json_out = args.json_out or (out.with_suffix(".json") if out else None)
    for path, text in ((out, with_other_sections(out, document)), (json_out, json.dumps(record, indent=2) + "\n")):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            log(f"wrote {path}")
    if out is None and json_out is None:
        log("quick mode: nothing written (give --out FILE to write the report and its JSON)")
    return 1 if any("error" in r for by_system in results.values() for r in by_system.values()) else 0
