"""Shared caches, destructive flags, forged ids and unbounded downloads, through the real engines,
CLI and library (docs/hardening.md, "Caches, forged ids and memory from small inputs")."""

import hashlib
import os
import shutil
import stat
import threading
import zipfile
from pathlib import Path

import hostile
import pytest
from hostile import refused, run

import charclf
from charclf.data.fetch import read_manifest
from charclf.files.locations import shipped_checkpoint
from charclf.predict import workers

SHIPPED_ONNX = shipped_checkpoint().with_suffix(".onnx")



# --- the engines' model cache ------------------------------------------------------------------


@pytest.fixture
def shared_tmp(tmp_path, monkeypatch):
    """A fresh temporary folder for the engines' cache, and no model loaded in this process yet."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    monkeypatch.setattr(workers, "_LOADED", {})
    monkeypatch.setattr(workers, "_PRIVATE", [])
    return folder


def swapped(path: Path) -> Path:
    """The shipped .onnx with its labels English and Russian swapped (same size, same graph)."""
    labels = charclf.load(SHIPPED_ONNX).labels
    swap = {"English": "Russian", "Russian": "English"}
    return hostile.onnx_relabelled(SHIPPED_ONNX, path, [swap.get(label, label) for label in labels])


def dask_labels(names, model):
    """charclf.dask.classify's labels for `names`, run by dask in this process (its worker code)."""
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    import dask

    import charclf.dask

    ddf = dd.from_pandas(pd.DataFrame({"name": names}), npartitions=2)
    with dask.config.set(scheduler="synchronous"):
        out = charclf.dask.classify(ddf, "name", model=model, k=1).compute()
    return list(out["label"]), set(out["model"])


def test_a_cache_folder_another_user_could_write_is_never_trusted(shared_tmp, tmp_path):
    genuine = workers.ModelBytes.read(SHIPPED_ONNX)
    planted = swapped(tmp_path / "planted.onnx")
    shared = shared_tmp / f"charclf-models-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # as another user (or anyone) could have made it
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    cached = shared / f"{genuine.sha256[:32]}.onnx"
    shutil.copy(planted, cached)
    (shared / f"{cached.name}.{os.getpid()}.{threading.get_ident()}.part").symlink_to(victim)
    labels, ids = dask_labels(["Smith", "Jones"], SHIPPED_ONNX)
    assert labels == ["English", "English"] and ids == {charclf.load(SHIPPED_ONNX).model_id}
    assert victim.read_text() == "mine\n" and cached.read_bytes() == planted.read_bytes()
    assert workers.model_cache() != shared and not workers.model_cache().stat().st_mode & 0o077


def test_a_cached_model_is_used_only_when_its_bytes_are_the_models(shared_tmp, tmp_path):
    genuine = workers.ModelBytes.read(SHIPPED_ONNX)
    own = workers.model_cache()
    assert own == shared_tmp / f"charclf-models-{os.getuid()}" and stat.S_IMODE(own.stat().st_mode) == 0o700
    planted = swapped(tmp_path / "planted.onnx")
    assert planted.stat().st_size == len(genuine.data)  # the same size: only the bytes tell them apart
    cached = own / f"{genuine.sha256[:32]}.onnx"
    shutil.copy(planted, cached)
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    (own / f"{cached.name}.{os.getpid()}.{threading.get_ident()}.part").symlink_to(victim)  # a stale link
    clf = workers.worker_classifier(genuine)
    assert clf.predict(["Jones"])[0].label == "English" and clf.model_id == genuine.id
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == genuine.sha256 and victim.read_text() == "mine\n"


def test_a_link_in_place_of_the_cache_folder_is_not_followed(shared_tmp, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (shared_tmp / f"charclf-models-{os.getuid()}").symlink_to(elsewhere)
    workers.worker_classifier(workers.ModelBytes.read(SHIPPED_ONNX))
    assert list(elsewhere.iterdir()) == [] and workers.model_cache().parent == shared_tmp


# --- data fetch: --force, and archives that inflate -------------------------------------------


def names_zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(f"data/names/{name}", data)
    return path.resolve().as_uri()


def test_fetch_force_deletes_nothing_charclf_did_not_write(tmp_path):
    dest = tmp_path / "mine"
    (dest / "photos").mkdir(parents=True)
    (dest / "photos" / "cat.jpg").write_bytes(b"\xff\xd8cat")
    (dest / "thesis.tex").write_text("three years\n")
    url = names_zip(tmp_path / "a.zip", {name: b"x\n" for name in read_manifest()})
    for force in ([], ["--force"]):
        result = refused(run("data", "fetch", "--dest", dest, "--url", url, *force, "--quiet"),
                         "which charclf did not fetch: choose a new or empty --dest")
        assert "pass --force" not in result.stderr
    assert (dest / "thesis.tex").read_text() == "three years\n" and (dest / "photos" / "cat.jpg").is_file()


def test_fetch_refuses_an_archive_that_would_inflate_past_a_dataset_before_inflating_it(tmp_path):
    bomb = {name: b"\0" * (4 << 20) for name in read_manifest()}  # 18 x 4 MiB: 72 MiB, each under the cap
    url = names_zip(tmp_path / "bomb.zip", bomb)
    assert (tmp_path / "bomb.zip").stat().st_size < 2 << 20
    refused(run("data", "fetch", "--dest", tmp_path / "names", "--url", url, "--quiet"),
            "would inflate to 75,497,472 bytes, far more than a names dataset")
    assert not (tmp_path / "names").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]


# --- memory from small inputs -----------------------------------------------------------------


def test_long_names_are_answered_in_batches_of_bounded_letters(tmp_path):
    import random

    rng = random.Random(0)
    names = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1000)) for _ in range(300)]
    (tmp_path / "long.txt").write_text("\n".join(names) + "\n")
    result = run("predict", "--file", tmp_path / "long.txt", "-k", "1", "--checkpoint", SHIPPED_ONNX)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 300, result.output[-300:]


def test_short_rows_of_a_wide_table_are_never_padded_in_memory(tmp_path):
    """A 1,000,001-column header over 300 one-cell rows (8 MB): padded in memory, 2.4 GB of lists;
    here it runs under a 1.5 GB address-space limit, and the answers still sit under their header."""
    import resource
    import subprocess
    import sys

    table, out = tmp_path / "wide.csv", tmp_path / "out.csv"
    table.write_text(",".join(f"c{i}" for i in range(1_000_000)) + ",name\n" + "Smith\n" * 299 + "Jones,,x\n")

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (1500 << 20, 1500 << 20))

    done = subprocess.run([sys.executable, "-m", "charclf", "predict", "--csv", table, "--column", "c0", "-k", "1",
                           "--out", out, "--checkpoint", SHIPPED_ONNX], capture_output=True, text=True,
                          preexec_fn=limited, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-500:]
    header, *rows = out.read_text().splitlines()  # no cell here needs quoting: split at commas
    assert header.endswith(",label,probability,error,model") and len(rows) == 300
    assert {row.count(",") for row in rows} == {header.count(",")}  # every row as wide as the header
    assert rows[0].startswith("Smith,,") and rows[0].rsplit(",", 4)[1] == "English"
    assert rows[-1].startswith("Jones,,x,,")


# --- model ids, and a checkpoint named like its export ----------------------------------------


def model_column(*args) -> set[str]:
    import json

    result = run("predict", "Jones", "Smith", "--json", *args)
    assert result.exit_code == 0, result.output
    return {json.loads(line)["model"] for line in result.stdout.splitlines()}, \
        [json.loads(line)["label"] for line in result.stdout.splitlines()]


def test_an_onnx_is_named_by_its_own_bytes_unless_verified_as_the_export_beside_it(tmp_path):
    genuine = hashlib.sha256(shipped_checkpoint().read_bytes()).hexdigest()[:16]
    assert model_column("--checkpoint", SHIPPED_ONNX) == ({genuine}, ["English", "English"])  # its .pt beside it
    lone = tmp_path / "lone.onnx"
    shutil.copy(SHIPPED_ONNX, lone)
    assert model_column("--checkpoint", lone)[0] == {hashlib.sha256(lone.read_bytes()).hexdigest()[:16]}
    forged = swapped(tmp_path / "forged.onnx")  # its metadata still claims the genuine .pt as its source
    ids, labels = model_column("--checkpoint", forged)
    assert ids == {hashlib.sha256(forged.read_bytes()).hexdigest()[:16]} != {genuine} and labels[0] == "Russian"
    odd = hostile.onnx_with(SHIPPED_ONNX, tmp_path / "odd.onnx", **{"charclf.source": "\x1b[31mred\nforged"})
    assert model_column("--checkpoint", odd)[0] == {hashlib.sha256(odd.read_bytes()).hexdigest()[:16]}
    with pytest.raises(charclf.errors.CheckpointError, match="a model id is hex digits"):
        charclf.Classifier(charclf.load(lone).checkpoint, charclf.load(lone).backend, lone, model_id="ab\ncd")


def test_a_forged_export_beside_a_checkpoint_is_never_used_in_its_place(tmp_path):
    pt, twin = tmp_path / "m.pt", tmp_path / "m.onnx"
    shutil.copy(shipped_checkpoint(), pt)
    swapped(twin)  # the genuine .pt's sha256 as its source, its labels swapped
    genuine = hashlib.sha256(pt.read_bytes()).hexdigest()[:16]
    assert charclf.load(pt).backend.name == "torch"
    assert model_column("--checkpoint", pt) == ({genuine}, ["English", "English"])
    refused(run("predict", "Jones", "--checkpoint", pt, "--backend", "onnx"), "is not the export of", code=2)
    assert model_column("--checkpoint", twin)[0] == {hashlib.sha256(twin.read_bytes()).hexdigest()[:16]}


def test_train_never_names_its_checkpoint_like_its_export(tmp_path, tiny_data):
    shutil.copy(SHIPPED_ONNX, tmp_path / "m.onnx")
    before = (tmp_path / "m.onnx").read_bytes()
    refused(run("train", "--data", tiny_data, "--epochs", "1", "--out", tmp_path / "m.onnx", "--no-progress"),
            "use --out", code=2)
    refused(run("train", "--data", tiny_data, "--epochs", "1", "--out", tmp_path / "n.ONNX", "--no-progress"),
            "use --out", code=2)
    assert (tmp_path / "m.onnx").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "m.onnx", "names"]


@pytest.mark.parametrize("where", ["file name", "csv"])
def test_a_label_that_cannot_name_a_class_stops_training_before_the_first_epoch(tmp_path, tiny_data, where):
    if where == "file name":
        (tiny_data / "Italian.txt").rename(tiny_data / "Ital\u00adian.txt")  # a soft hyphen
        data, message = tiny_data, "its label 'Ital\\xadian' cannot name a class: it holds an unprintable character"
    else:
        data = tmp_path / "t.csv"
        data.write_text("name,label\nSmith,English\nJones,English\nRossi,Ital\u200bian\n", encoding="utf-8")
        message = "t.csv, line 4: the label 'Ital\\u200bian' cannot name a class: it holds an unprintable character"
    result = refused(run("train", "--data", data, "--epochs", "1", "--out", tmp_path / "m.pt", "--no-progress"),
                     message)
    assert "epoch" not in result.output and not list(tmp_path.glob("m.*"))


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_training_table_without_line_ends_is_refused_before_it_is_held(tmp_path, command):
    table = tmp_path / "flat.csv"
    with open(table, "w") as f:
        f.write("name,label,")
        for _ in range(17):
            f.write("Smith,English," * 74_899)  # 17 x 1 MB: past the 16 MiB a line may have
    extra = ["--out", tmp_path / "m.pt", "--epochs", "1", "--no-progress"] if command == "train" else []
    refused(run(command, "--data", table, *extra), "line 1 is longer than 16,777,216 bytes")


# --- tampered model cards ---------------------------------------------------------------------

CARDS = {
    "scores": (lambda p: p["metrics"].update(test={"accuracy": "high", "macro_f1": [1]}),
               "its metrics.test.accuracy is not a finite number ('high')"),
    "sizes": (lambda p: p["train_config"].update(split_sizes=[1, 2, 3]),
              "its train_config.split_sizes is not a table holding train, val, test"),
    "teachers": (lambda p: p["metrics"].update(recipe={"name": "x", "teachers": {"members": 2}}),
                 "its metrics.recipe.teachers is not a table holding members, test, train_seconds"),
    "escape": (lambda p: p["metrics"].update(best_epoch="\x1b[31m"), "its metrics.best_epoch is not a whole number"),
    "deep": (lambda p: p["metrics"].update(history=[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]),
             "its metrics nests deeper than 16 levels"),
}


@pytest.mark.parametrize("card", sorted(CARDS))
def test_a_tampered_card_is_refused_in_one_line_by_every_command(tmp_path, card):
    change, message = CARDS[card]
    model = hostile.mutated(shipped_checkpoint(), tmp_path / "m.pt", change)
    for command in (["info"], ["predict", "Jones"], ["serve", "--port", "59999"], ["explain", "Jones"]):
        refused(run(*command, "--checkpoint", model), message)
    exported = hostile.onnx_with(SHIPPED_ONNX, tmp_path / "m.onnx", {"metrics": {"test": [1]}})
    for command in (["info"], ["predict", "Jones"]):
        refused(run(*command, "--checkpoint", exported), "its metrics.test is not a table holding accuracy, macro_f1")


def test_what_a_checkpoint_kept_by_an_interrupted_run_records_is_shown(tmp_path):
    model = hostile.mutated(shipped_checkpoint(), tmp_path / "m.pt", lambda p: p["metrics"].update(
        val={"accuracy": 0.5, "macro_f1": 0.25}, test=None))  # no count: as an interrupted run keeps it
    result = run("info", "--checkpoint", model)
    assert result.exit_code == 0 and "val:         accuracy 0.5000, macro-F1 0.2500 (unknown names)" in result.stdout
    odd = hostile.onnx_with(SHIPPED_ONNX, tmp_path / "m.onnx", **{"charclf.exported": '{"x": 1}'})
    assert run("info", "--checkpoint", odd).exit_code == 0


def test_predict_dataframe_takes_integer_column_labels():
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(__import__("io").StringIO("Jones,1\nRossi,2\n"), header=None)  # columns 0 and 1
    out = charclf.predict_dataframe(frame, 0, k=1, classifier=charclf.load(SHIPPED_ONNX))
    assert list(out.columns) == [0, 1, "label", "probability", "error", "model"]
    assert list(out["label"]) == ["English", "Italian"]
    assert list(charclf.predict_dataframe(frame, [0], k=1, classifier=charclf.load(SHIPPED_ONNX))["label"]) == \
        ["English", "Italian"]
    with pytest.raises(charclf.errors.CharclfError, match="no column '5' in the DataFrame; it has columns '0', '1'"):
        charclf.predict_dataframe(frame, 5, classifier=charclf.load(SHIPPED_ONNX))


def test_sigterm_while_predict_writes_a_table_leaves_no_temp_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out.csv"
    out.write_text("an earlier table\n")
    process = subprocess.Popen([sys.executable, "-m", "charclf", "predict", "--csv", "-", "--column", "name", "--out",
                                out, "--checkpoint", SHIPPED_ONNX], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    # Past what the delimiter's sniff reads (64 KB), short of a chunk (32,768 rows); then nothing more:
    # the run has begun writing and waits for the rest of the chunk.
    process.stdin.write("id,name\n" + "".join(f"{i},Smith\n" for i in range(10_000)))
    process.stdin.flush()
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.csv.*.tmp")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.csv.*.tmp")), "the run never began writing"
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=30)[1]
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines() == [f"Error: stopped by SIGTERM; {out} was not written (an earlier one is as "
                                           "it was)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"] and out.read_text() == "an earlier table\n"
