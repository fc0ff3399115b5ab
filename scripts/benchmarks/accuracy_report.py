"""The accuracy mode's report (scripts/benchmarks/accuracy.py): each system's results and their mean
over the split seeds as markdown tables, the verdict, the protocol and the notes."""

from __future__ import annotations

from pathlib import Path

from charclf.threads import usable_cores

from benchmarks.accuracy_systems import CHARCLF_SYSTEMS, INFER_NAMES, LABELS, QUICK_INFER_NAMES
from benchmarks.common import md_table

MEAN_KEYS = ("accuracy", "macro_f1", "offdist_accuracy", "offdist_macro_f1", "train_seconds",
             "names_per_second", "cli_names_per_second",
             "cli_names_per_second_cores", "peak_train_mb")
# The recurrent models again with --precision bfloat16 (charclf.predict.precision), beside float32's.
BFLOAT16_KEYS = ("accuracy", "macro_f1", "cli_names_per_second", "cli_names_per_second_cores")
MEAN_KEYS += tuple(f"{key}_bfloat16" for key in BFLOAT16_KEYS)


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def fmt(value: float | None, kind: str) -> str:
    """A score to 3 decimals, seconds to 1 (2 under 0.1), names/s and MB whole; None as "-"."""
    if value is None or kind not in ("score", "seconds"):
        return "-" if value is None else f"{value:,.0f}"
    return f"{value:.3f}" if kind == "score" else f"{value:.1f}" if value >= 0.1 else f"{value:.2f}"


def over_seeds(seeds: list[int], per_seed: str = "") -> str:
    """"seed 0", or "mean over seeds 0, 1, 2" (and `per_seed`)."""
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}{per_seed}"


def mean_results(seeds: list[int], systems: list[str], results: dict) -> dict[str, dict]:
    """Each system's mean over the seeds (only systems with no failed seed), by-length groups included."""
    means = {}
    for system in systems:
        runs = [results[seed][system] for seed in seeds]
        if any("error" in r for r in runs):
            continue
        means[system] = {key: mean([r.get(key) for r in runs]) for key in MEAN_KEYS}
        if "by_length" in runs[0]:
            means[system]["by_length"] = {group: {"n": [r["by_length"][group]["n"] for r in runs],
                                                  "accuracy": mean([r["by_length"][group]["accuracy"] for r in runs])}
                                          for group in runs[0]["by_length"]}
    return means


def results_table(seeds: list[int], systems: list[str], results: dict, means: dict) -> str:
    offdist = any("offdist_accuracy" in r for by_system in results.values() for r in by_system.values())
    header = ["system", "test accuracy", "macro-F1", *(["off-distribution accuracy", "off-distribution macro-F1"]
                                                      if offdist else []),
              "training s", "inference names/s", "`predict --file` names/s",
              f"`predict --file` names/s, {usable_cores()} threads", "peak training memory (MB)"]

    def row(label: str, r: dict, bold: bool = False) -> list[str]:
        score = (lambda v: f"**{fmt(v, 'score')}**") if bold else (lambda v: fmt(v, "score"))
        scores = [r["accuracy"], r["macro_f1"], *([r.get("offdist_accuracy"), r.get("offdist_macro_f1")]
                                                  if offdist else [])]
        return [label, *map(score, scores), fmt(r["train_seconds"], "seconds"),
                fmt(r["names_per_second"], "rate"), fmt(r.get("cli_names_per_second"), "rate"),
                fmt(r.get("cli_names_per_second_cores"), "rate"), fmt(r["peak_train_mb"], "mb")]

    rows = []
    for system in systems:
        for seed in seeds:
            r = results[seed][system]
            label = LABELS[system] + (f", seed {seed}" if len(seeds) > 1 else "")
            rows.append([label, f"failed ({r['error']})", *["-"] * (len(header) - 2)] if "error" in r
                        else row(label, r))
        if len(seeds) > 1 and system in means:
            label = f"**{LABELS[system].strip('*')}, mean of seeds {', '.join(map(str, seeds))}**"
            rows.append(row(label, means[system], bold=True))
    return "\n".join(md_table(header, rows))


def length_table(seeds: list[int], means: dict) -> str | None:
    shown = [s for s in CHARCLF_SYSTEMS if "by_length" in means.get(s, {})]
    if not shown:
        return None
    groups = means[shown[0]]["by_length"]
    header = [f"{group} letters (n = {' / '.join(f'{n:,}' for n in g['n'])})" for group, g in groups.items()]
    rows = [[LABELS[s], *(fmt(g["accuracy"], "score") for g in means[s]["by_length"].values())] for s in shown]
    return ("\n".join(md_table(["system", *header], rows))
            + f"\n\nn: test names in the group ({over_seeds(seeds, '; n per seed')}).")


def label_set_table(seeds: list[int], systems: list[str], results: dict) -> str | None:
    """Each charclf model's conformal label sets on the test split: coverage and mean size per level."""
    shown = [s for s in systems if all(results[seed][s].get("label_sets") for seed in seeds)]
    if not shown:
        return None
    levels = [row["coverage_target"] for row in results[seeds[0]][shown[0]]["label_sets"]]
    header = [cell for level in levels for cell in (f"{level:.0%}: coverage", "mean size")]
    rows = []
    for system in shown:
        sets = [results[seed][system]["label_sets"] for seed in seeds]
        rows.append([LABELS[system], *(cell for i in range(len(levels)) for cell in (
            fmt(mean([r[i]["coverage"] for r in sets]), "score"), f"{mean([r[i]['mean_size'] for r in sets]):.2f}"))])
    return "\n".join(md_table(["system", *header], rows)) + (
        f"\n\nConformal label sets ({over_seeds(seeds)}), thresholds fitted on the validation split at save time "
        "(charclf.predict.conformal); coverage is the share of test names whose set holds the true label.")


def precision_table(seeds: list[int], means: dict) -> str | None:
    """The recurrent models in float32 (their default) and bfloat16: test scores and `predict --file` rates."""
    shown = [s for s in CHARCLF_SYSTEMS if means.get(s, {}).get("accuracy_bfloat16") is not None]
    if not shown:
        return None
    header = ["system", "accuracy float32 / bfloat16", "macro-F1 float32 / bfloat16",
              "`predict --file` names/s, 1 thread, float32 / bfloat16", f"the same, {usable_cores()} threads"]
    columns = (("accuracy", "score"), ("macro_f1", "score"), ("cli_names_per_second", "rate"),
               ("cli_names_per_second_cores", "rate"))
    pair = lambda m, key, kind: f"{fmt(m[key], kind)} / {fmt(m[key + '_bfloat16'], kind)}"  # noqa: E731
    rows = [[LABELS[s], *(pair(means[s], key, kind) for key, kind in columns)] for s in shown]
    return "\n".join(md_table(header, rows)) + (f"\n\nThe same trained models predicting with `--precision "
                                                f"bfloat16` ({over_seeds(seeds)}; charclf.predict.precision): "
                                                "float32 is the default.")


def verdict(seeds: list[int], means: dict, quick: bool, results: dict) -> str:
    text = ("**Does charclf's recurrent model (purely recurrent, no n-gram inside) beat the n-gram logistic "
            "regression on both accuracy and macro-F1?**")
    peers = [(p, how) for p, how in (("logreg", "fitted on the train split"),
                                     ("logreg-trainval", "fitted on train+validation")) if p in means]
    shown = [system for system in ("gru", "gru-3", "best") if system in means]
    if not shown or not peers:
        return text + (" Not measured in this run (it needs `gru`, `gru-3` or `best`, and `logreg` or "
                       "`logreg-trainval`).")
    for system in shown:
        g = means[system]
        text += f" **{LABELS[system].strip('*')}:**"
        for peer, how in peers:
            p = means[peer]
            beats = g["accuracy"] > p["accuracy"] and g["macro_f1"] > p["macro_f1"]
            text += (f" Against the logistic regression {how}: **{'yes' if beats else 'no'}** (accuracy "
                     f"{g['accuracy']:.3f} vs {p['accuracy']:.3f}, macro-F1 {g['macro_f1']:.3f} vs "
                     f"{p['macro_f1']:.3f}{every_seed(seeds, system, peer, results)}).")
    listed = ", ".join(map(str, seeds))
    text += f" ({f'Split seed {listed}' if len(seeds) == 1 else f'Means over split seeds {listed}'}.)"
    return text + (" (Quick smoke-test settings: these numbers measure nothing.)" if quick else "")


def names_verdict(seeds: list[int], means: dict) -> str | None:
    """With extra names: each network against the logistic regression fitted on the same names, and
    each system with them against itself without, on the test split and the off-distribution set."""
    pairs = [(net, peer) for net, peer in (("best-names", "logreg-trainval-names"), ("gru-names", "logreg-names"),
                                           ("gru-names", "logreg-trainval-names")) if net in means and peer in means]
    same = [(system[: -len("-names")], system) for system in means if system.endswith("-names")
            and system[: -len("-names")] in means]
    if not pairs and not same:
        return None

    def both(m: dict) -> str:
        return (f"test {m['accuracy']:.3f} / {m['macro_f1']:.3f}, off-distribution {m['offdist_accuracy']:.3f} / "
                f"{m['offdist_macro_f1']:.3f}")

    named = {**LABELS, "logreg": "TF-IDF + LogisticRegression fitted on the train split",
             "logreg-trainval": "TF-IDF + LogisticRegression fitted on train+validation"}
    lines = [f"Accuracy / macro-F1 ({over_seeds(seeds)}):", ""]
    for net, peer in pairs:
        n, p = means[net], means[peer]
        ahead = all(n[key] > p[key] for key in ("accuracy", "macro_f1", "offdist_accuracy", "offdist_macro_f1"))
        lines.append(f"- {named[net]} against {named[peer]}: ahead on all four: "
                     f"**{'yes' if ahead else 'no'}** ({both(n)}; the peer: {both(p)}).")
    for without, with_names in same:
        lines.append(f"- {named[without].strip('*')}: without the extra names {both(means[without])}; with them "
                     f"{both(means[with_names])}.")
    return "\n".join(lines)


def every_seed(seeds: list[int], system: str, peer: str, results: dict) -> str:
    """With several split seeds: on how many of them `system` beat `peer` on both scores."""
    pairs = [(results[seed].get(system, {}), results[seed].get(peer, {})) for seed in seeds if seed in results]
    pairs = [(a, b) for a, b in pairs if "accuracy" in a and "accuracy" in b]
    if len(seeds) < 2 or len(pairs) < len(seeds):
        return ""
    ahead = sum(a["accuracy"] > b["accuracy"] and a["macro_f1"] > b["macro_f1"] for a, b in pairs)
    return f"; ahead on both on {ahead} of the {len(seeds)} split seeds"


def protocol(args, sizes: dict) -> str:
    from charclf.data.dataset import SPLIT_FRACTIONS

    size_text = "; ".join(f"{s['train']:,} / {s['val']:,} / {s['test']:,} train / validation / test pairs for "
                          f"seed {seed}" for seed, s in sizes.items())
    cut = "/".join(f"{fraction * 100:.0f}" for fraction in SPLIT_FRACTIONS)
    n_infer = QUICK_INFER_NAMES if args.quick else INFER_NAMES
    return (
        f"Every system trains on the train split made by charclf's own `load_dataset` + `split_dataset(seed)` "
        f"(names folded to ASCII, duplicate (name, label) pairs collapsed, unique name strings shuffled and cut "
        f"{cut} so that no name text is in two splits: {size_text}) and is scored on the test split with "
        f"`charclf.report.metrics.report` (accuracy; macro-F1 = mean of the per-label F1 over all "
        f"{next(iter(sizes.values()))['labels']} labels). charclf's models pick their best epoch on the "
        f"validation split; the logistic regression, which selects nothing, is shown both fitted on the train "
        f"split alone and on train + validation. Each charclf model takes its settings from "
        f"`charclf.config.defaults_for(arch, seed=seed)` and nothing else (the tutorial: "
        f"`charclf.training.recipes.TUTORIAL`).{extra_protocol(args, sizes)} The systems "
        f"run {'one after another' if args.jobs == 1 else f'{args.jobs} at a time'} on "
        f"this machine, each in a fresh subprocess with {args.threads} thread(s): training s is the wall time of "
        f"the training call, peak training memory is that process's peak RSS when training ends (interpreter and "
        f"libraries included), and inference names/s is measured on the loaded model after a warm-up (charclf: "
        f"`load_model(path, device='cpu').predict` on {n_infer:,} different names, each the first half of a "
        f"raw dataset line drawn at random joined to the second half of another (charclf runs a repeated name "
        f"once, so repeats would time nothing); "
        f"logistic regression: folding + `predict_proba` on the same names). `predict --file` names/s is the "
        f"command itself on those lines, start-up and model "
        f"loading excluded: (N - 1) / (time for N names - time for one name), each the best of two runs, output "
        f"to /dev/null, with {args.threads} thread(s) and again with one per usable core ({usable_cores()}) "
        f"(\"-\": N names did not outlast one by a tenth of its time, too few to time). "
        f"Accuracy by name length is `charclf.training.comparison.accuracy_by_length` on the test split."
    )


def extra_protocol(args, sizes: dict) -> str:
    """With --extra-names: what the ...-names systems also train on, and the off-distribution set."""
    if not args.extra_names:
        return ""
    pools = "; ".join(f"{s['extra']:,} for seed {seed}" for seed, s in sizes.items())
    cap = f"at most {args.extra_cap} per label" if args.extra_cap else "all of them"
    ratio = f", at most {args.extra_ratio:g} x the label's training names" if args.extra_ratio else ""
    return (f" The systems named \"with the extra names\" also train on the names of `--extra-names "
            f"{args.extra_names}` (charclf.data.extra: read as the dataset's names are, none of the seed's "
            f"validation and test names, {cap}{ratio}: {pools}), each weighing {args.extra_weight:g} times a dataset "
            f"name (charclf's networks: that share of them drawn afresh each epoch; the logistic regression: "
            f"sample_weight). Every system is also scored on the off-distribution set: "
            f"{next(iter(sizes.values()))['offdist']:,} names of those lists that the dataset does not hold, never "
            f"trained on, the same for every seed.")


def note(system: str, r: dict) -> str | None:
    """One line on how this run of `system` went (its settings, iterations, size)."""
    d = r.get("details", {})
    if "resolved" in r:
        configs = {**{k: v for k, v in r["resolved"]["model"].items() if k not in ("n_letters", "n_classes")},
                   **{k: v for k, v in r["resolved"]["train"].items() if k != "seed"}}
        lbfgs = f", {d['lbfgs_iterations']} L-BFGS iterations" if d.get("lbfgs_iterations") else ""
        return (f"{', '.join(f'{k}={v}' for k, v in configs.items())}; best epoch {d['best_epoch']} of "
                f"{d['epochs_run']}{lbfgs}, {d['parameters']:,} parameters, trained on {d['device']} "
                f"({fmt(d['epoch_seconds'], 'seconds')} s of it in the fitting itself).")
    if system.startswith("logreg"):
        return (f"fitted on {d['fitted_pairs']:,} pairs, {d['features']:,} n-gram features, lbfgs stopped after "
                f"{d['n_iter']} iterations (max_iter {d['max_iter']}, "
                f"{'converged' if d['converged'] else 'NOT converged'}), scikit-learn {d['sklearn']}.")
    return f"always \"{d['label']}\"." if system == "majority" else None


def notes(seeds: list[int], systems: list[str], results: dict) -> list[str]:
    lines = []
    for system in systems:
        for seed in seeds:
            r = results[seed][system]
            line = None if "error" in r else note(system, r)
            if line:
                lines.append(f"- {LABELS[system]}{f', seed {seed}' if len(seeds) > 1 else ''}: {line}")
    return lines


def build_report(args, results: dict, sizes: dict, machine: list, started: str, command: str) -> tuple[str, str, dict]:
    """(the markdown document, what goes to stdout, the JSON record)."""
    seeds, systems = args.seeds, args.systems
    means = mean_results(seeds, systems, results)
    table, by_length = results_table(seeds, systems, results, means), length_table(seeds, means)
    answer = verdict(seeds, means, args.quick, results)
    title = "# charclf benchmark" + (" (QUICK SMOKE TEST: tiny settings, not a measurement)" if args.quick else "")
    parts = [title, "", f"Run {started}, with:", "", "```", command, "```", "", "## Machine", "",
             *[f"- {key}: {value}" for key, value in machine], "", "## Protocol", "", protocol(args, sizes), "",
             "## Results", "", table, "", answer, ""]
    for heading, section in (("### Test accuracy by name length", by_length),
                             ("### Precision: float32 and bfloat16", precision_table(seeds, means)),
                             ("### Conformal label sets", label_set_table(seeds, systems, results))):
        parts += [heading, "", section, ""] if section else []
    names = names_verdict(seeds, means)
    parts += ["### With the extra names", "", names, ""] if names else []
    parts += ["Notes:", "", *notes(seeds, systems, results), "",
              "Time figures on shared machines are noisy: compare systems within one run, as ratios.", ""]
    summary = "\n\n".join([table, answer, *([by_length] if by_length else [])])
    record = {"command": command, "started": started, "data": str(args.data), "quick": args.quick,
              "threads": args.threads, "seeds": seeds, "systems": systems, "machine": dict(machine),
              "sizes": sizes, "results": {str(seed): results[seed] for seed in seeds}, "means": means}
    return "\n".join(parts), summary, record


OTHER_SECTIONS = "<!-- sections written by other scripts -->"


def with_other_sections(path: Path | None, document: str) -> str:
    """This report, then whatever the report at `path` holds below OTHER_SECTIONS (the sections that
    the other modes of scripts/benchmark.py and people add), kept."""
    kept = ""
    if path is not None and path.exists():
        text = path.read_text(encoding="utf-8")
        kept = text[text.index(OTHER_SECTIONS):] if OTHER_SECTIONS in text else ""
    return document.rstrip("\n") + "\n\n" + (kept or OTHER_SECTIONS + "\n")
