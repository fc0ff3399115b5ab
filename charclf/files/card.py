"""A model card: what made a model and how well it does, as one plain dict (no torch here).

Built from what a checkpoint stores (its model config, train config, metrics and calibration), so
a checkpoint from before cards existed still gets one: what it does not record is "unknown"."""

from __future__ import annotations

from typing import Any

from charclf.config import SAVED_BEFORE

UNKNOWN = "unknown"
CARD_VERSION = 1
ARCH_NAMES = {"gru": "GRU", "lstm": "LSTM", "rnn": "plain (tanh) RNN", "ngram": "n-gram logistic regression"}
FOLDER_SPLIT = ("unique folded names, sorted, shuffled with random.Random(seed); the first 80% train, "
                "the next 10% validation, the rest test (no name text in two splits)")
STREAM_SPLIT = "each row by a hash (blake2b) of its folded name and the seed: about 80/10/10 train/validation/test"
FINGERPRINT = ("sha256 of the labels and the (folded name, label) pairs of a folder, or of a CSV/TSV file's bytes; "
               "first 16 hex digits")


def charclf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("charclf")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return UNKNOWN


def utc_now() -> str:
    """The time now in UTC, to the second, ISO 8601 (2026-12-01T02:00:00Z)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def card_from_parts(model_config: dict, labels: list[str], alphabet: str, train_config: dict, metrics: dict,
                    calibration: dict, parameters: int | None = None) -> dict[str, Any]:
    """The card of a checkpoint's stored parts; `parameters` is used when its metrics lack a count."""
    train, m = train_config or {}, metrics or {}
    data_dir = str(train.get("data_dir", ""))
    streamed = data_dir.lower().endswith((".csv", ".tsv", ".txt", ".gz"))
    return {
        "card_version": CARD_VERSION,
        "charclf_version": train.get("charclf", UNKNOWN),
        "torch_version": train.get("torch", UNKNOWN),
        "date": train.get("saved_at", UNKNOWN),
        "model": _model(model_config, m.get("parameters", parameters)),
        "labels": list(labels),
        "alphabet": alphabet,
        "data": {"fingerprint": train.get("data_fingerprint", UNKNOWN), "fingerprint_of": FINGERPRINT,
                 "split_sizes": train.get("split_sizes", UNKNOWN)},
        "split": {"seed": train.get("seed", UNKNOWN),
                  "protocol": (STREAM_SPLIT if streamed else FOLDER_SPLIT) if data_dir else UNKNOWN},
        "training": {key: train.get(key, UNKNOWN) for key in
                     ("epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "average_decay",
                      "next_letter_weight", "device")}
                    | {key: m.get(key, UNKNOWN) for key in ("best_epoch", "epochs_run", "train_seconds")}
                    | {"refit": m.get("refit")}  # None: the network trained on train alone (charclf.training.refit)
                    | {"recipe": m.get("recipe", {"name": "default"})}  # charclf.training.recipes
                    | ({"extra_names": {key: train.get(f"extra_{key}") for key in ("names", "weight", "cap", "ratio")}}
                       if train.get("extra_names") else {}),  # charclf.data.extra
        "metrics": {split: m.get(split, UNKNOWN) for split in ("val", "test")}
                   | {"test_majority_baseline": m.get("test_majority_baseline", UNKNOWN)}
                   | ({"first_run_test": m["first_run"]["test"]} if "first_run" in m else {})
                   | ({"offdist": m["offdist"]} if "offdist" in m else {}),
        "calibration": _calibration(calibration or m.get("calibration") or {}),
    }


def _model(config: dict, parameters: int | None) -> dict[str, Any]:
    arch = config.get("arch", UNKNOWN)
    fields = ("ngram_buckets", "ngram_max_n") if arch == "ngram" else \
        ("bidirectional", "num_layers", "hidden_size", "embedding_dim", "pooling", "dropout", "lowercase", "members",
         "spelling_weight")
    return {"backbone": arch, **{key: config.get(key, SAVED_BEFORE.get(key, UNKNOWN)) for key in fields},
            "parameters": UNKNOWN if parameters is None else parameters}


def _calibration(calibration: dict) -> dict[str, Any]:
    """Temperature and where it was fitted; ECE, Brier and NLL on test before and after it."""
    out = {"temperature": calibration.get("temperature", 1.0 if not calibration else UNKNOWN),
           "fit_on": calibration.get("fit_on", "none (raw softmax)" if not calibration else UNKNOWN)}
    for when in ("before", "after"):
        out[f"test_{when}"] = calibration.get(f"test_{when}", UNKNOWN)
    return out


def format_card(card: dict, source: str) -> str:
    """The card as lines of text for `charclf info`."""
    model, cal, data = card["model"], card["calibration"], card["data"]
    sizes = data["split_sizes"]
    sizes_text = ""
    if isinstance(sizes, dict):
        sizes_text = f"; split sizes train {sizes['train']}, val {sizes['val']}, test {sizes['test']}"
    lines = [
        f"{source}",
        f"  charclf {card['charclf_version']}, torch {card['torch_version']}, saved {card['date']}",
        f"  model:       {_describe_model(model)}",
        f"  labels:      {len(card['labels'])}: {', '.join(card['labels'])}",
        f"  alphabet:    {card['alphabet']!r}",
        f"  data:        fingerprint {data['fingerprint']}{sizes_text}",
        f"  split:       seed {card['split']['seed']}; {card['split']['protocol']}",
    ]
    refit = card["training"].get("refit")
    refitted = isinstance(refit, dict)  # its validation scores are the first run's (charclf.training.refit)
    for split in ("val", "test"):
        scores = card["metrics"][split]
        named = scores.get("n", UNKNOWN) if isinstance(scores, dict) else None  # an interrupted run's: no count
        lines.append(f"  {split + ':':<12} " + (f"accuracy {scores['accuracy']:.4f}, macro-F1 {scores['macro_f1']:.4f} "
                                                f"({named} names)" if isinstance(scores, dict) else UNKNOWN)
                     + (" (the first run, trained on train alone)" if refitted and split == "val" else ""))
    if refitted:
        alone = card["metrics"].get("first_run_test") or {}
        lines.append(f"  refit:       trained on train + validation ({refit['pairs']} pairs); the first run's test "
                     f"accuracy {alone.get('accuracy', float('nan')):.4f}, "
                     f"macro-F1 {alone.get('macro_f1', float('nan')):.4f}")
    recipe = card["training"].get("recipe") or {}
    teachers = recipe.get("teachers")
    if isinstance(teachers, dict):
        lines.append(f"  recipe:      {recipe.get('name')}: learnt from an ensemble of {teachers['members']} networks "
                     f"(their test accuracy {teachers['test']['accuracy']:.4f}, macro-F1 "
                     f"{teachers['test']['macro_f1']:.4f}; {_seconds(teachers['train_seconds'])} of training)")
    extra, offdist = card["training"].get("extra_names"), card["metrics"].get("offdist")
    if isinstance(extra, dict) and isinstance(offdist, dict):
        limits = (f", at most {extra['cap']} per label" if extra.get("cap") else "") + \
            (f", at most {extra['ratio']:g} x its training names" if extra.get("ratio") else "")
        lines.append(f"  extra names: {extra['names']} (weight {extra['weight']:g}{limits}); off-distribution accuracy "
                     f"{offdist['accuracy']:.4f}, macro-F1 {offdist['macro_f1']:.4f} ({offdist['n']} names)")
    base = card["metrics"]["test_majority_baseline"]
    if isinstance(base, dict):
        lines.append(f"  baseline:    always {base['label']}: test accuracy {base['accuracy']:.4f}")
    temperature = cal["temperature"]
    line = f"  calibration: temperature {temperature:.4f}" if isinstance(temperature, (int, float)) else \
        f"  calibration: temperature {temperature}"
    line += f" (fitted on {cal['fit_on']})" if cal["fit_on"] == "val" else f" ({cal['fit_on']})"
    if isinstance(cal["test_before"], dict) and isinstance(cal["test_after"], dict):
        line += f"; test ECE {cal['test_before']['ece']:.4f} -> {cal['test_after']['ece']:.4f}"
    lines.append(line)
    if isinstance(card.get("exported"), dict):
        e = card["exported"]
        lines.append(f"  exported:    {e['format']} from {e['from']} by charclf {e['charclf_version']}, {e['date']}")
    train = card["training"]
    lines.append(f"  training:    best epoch {train['best_epoch']} of {train['epochs_run']}, "
                 f"{_seconds(train['train_seconds'])} on {train['device']}")
    return "\n".join(lines)


def _describe_model(model: dict) -> str:
    arch = model["backbone"]
    parameters = model["parameters"]
    count = f"{parameters:,} parameters" if isinstance(parameters, int) else f"{parameters} parameters"
    if arch == "ngram":
        return f"{ARCH_NAMES[arch]} over 1-{model['ngram_max_n']}-grams in {model['ngram_buckets']} buckets, {count}"
    direction = {True: "bidirectional", False: "unidirectional"}.get(model["bidirectional"], "?")
    members = model.get("members", 1)
    ensemble = f"an ensemble of {members} networks, each a " if isinstance(members, int) and members > 1 else ""
    weight = model.get("spelling_weight", 0.0)
    spelling = f", spelling heads (weight {weight:g})" if isinstance(weight, (int, float)) and weight > 0 else ""
    return (f"{ensemble}{direction} {ARCH_NAMES.get(arch, arch)}, {model['num_layers']} layer(s) of "
            f"{model['hidden_size']}, embedding {model['embedding_dim']}, {model['pooling']} pooling{spelling}, "
            f"{count}")


def _seconds(value) -> str:
    return f"{value:.0f} s" if isinstance(value, (int, float)) else f"{value} s"


def card_of_checkpoint(checkpoint) -> dict[str, Any]:
    """The card of a loaded checkpoint.Checkpoint (an old one too: what it lacks is "unknown")."""
    from dataclasses import asdict

    stored = sum(tensor.numel() for tensor in checkpoint.state_dict.values())
    return card_from_parts(asdict(checkpoint.model_config), checkpoint.labels, checkpoint.alphabet,
                           checkpoint.train_config, checkpoint.metrics, checkpoint.calibration, stored)


def card_of_description(description, exported: dict | None = None) -> dict[str, Any]:
    """The card of a model's checked description (files.description.ModelDescription: a .onnx
    export's, or a checkpoint's without its weights), with how it was exported when it was."""
    from dataclasses import asdict

    d = description
    card = card_from_parts(asdict(d.model_config), d.labels, d.alphabet, d.train_config, d.metrics, d.calibration)
    return {**card, "exported": exported} if exported else card
