"""Outputs, tables, priors and .onnx files through the real CLI (docs/hardening.md, "Outputs,
tables and .onnx files"): nothing the command reads or another kind of file is ever replaced,
every read is bounded, tables round-trip, and each refusal is one line."""

import csv
import http.server
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import hostile
import pytest
from hostile import refused, run

from charclf.files.locations import shipped_checkpoint

SHIPPED_ONNX = shipped_checkpoint().with_suffix(".onnx")



def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"id,name\n1,Smith\n2,Rossi\n3,Sato\n")
    return path


# --- one guard for every output ---------------------------------------------------------------


def test_export_never_replaces_the_checkpoint_it_reads(tmp_path):
    model = tmp_path / "m.pt"
    shutil.copy(shipped_checkpoint(), model)
    before = model.read_bytes()
    refused(run("export", model, "--checkpoint", model), "it is this command's input")
    (tmp_path / "link.onnx").symlink_to(model)
    refused(run("export", tmp_path / "link.onnx", "--checkpoint", model), "it is this command's input")
    assert model.read_bytes() == before
    for _ in range(2):  # an earlier export of the same kind is replaced
        assert run("export", tmp_path / "m.onnx", "--checkpoint", model).exit_code == 0
    (tmp_path / "notes.onnx").write_text("my notes\n")
    refused(run("export", tmp_path / "notes.onnx", "--checkpoint", model), "it is text, not an earlier ONNX export")


@pytest.mark.parametrize("target", ["checkpoint", "names file", "input", "symlink", "hard link", "picture"])
def test_a_table_never_replaces_an_input_or_a_file_of_another_kind(tmp_path, table, tiny_data, target):
    path = {"checkpoint": tmp_path / "keep.pt", "names file": tiny_data / "English.txt", "input": table,
            "symlink": tmp_path / "link.csv", "hard link": tmp_path / "hard.csv", "picture": tmp_path / "p.png"}[target]
    if target == "checkpoint":
        shutil.copy(shipped_checkpoint(), path)
    elif target == "symlink":
        path.symlink_to(table)
    elif target == "hard link":
        os.link(table, path)
    elif target == "picture":
        hostile.png(path)
    before = path.read_bytes()
    message = {"checkpoint": "a charclf checkpoint", "names file": "a names file of a dataset",
               "picture": "a PNG picture"}.get(target, "it is this command's input")
    refused(run("predict", "--csv", table, "--column", "name", "--out", path, "--encoding-errors", "replace"), message)
    assert path.read_bytes() == before and table.read_bytes() == b"id,name\n1,Smith\n2,Rossi\n3,Sato\n"


def test_an_earlier_output_of_the_same_kind_is_replaced(tmp_path, table):
    out = tmp_path / "out.csv"
    for _ in range(2):
        assert run("predict", "--csv", table, "--column", "name", "--out", out).exit_code == 0
    assert rows(out.read_text())[0][:3] == ["id", "name", "label"]
    (tmp_path / "notes.txt").write_text("my own notes, kept as text\n")
    assert run("predict", "--csv", table, "--column", "name", "--out", tmp_path / "notes.txt").exit_code == 0


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full", "fifo"])
def test_a_table_never_goes_to_what_is_not_a_regular_file(tmp_path, table, device):
    path = Path(device) if device.startswith("/") else tmp_path / "fifo.csv"
    if device == "fifo":
        os.mkfifo(path)
    refused(run("predict", "--csv", table, "--column", "name", "--out", path), "not a regular file")
    assert not path.is_file()


def test_confusion_evaluate_calibration_and_explain_outputs_are_guarded(tmp_path, tiny_data):
    keep = tmp_path / "keep.pt"
    shutil.copy(shipped_checkpoint(), keep)
    before = keep.read_bytes()
    refused(run("confusion", "--data", tiny_data, "--out", keep), "a charclf checkpoint")
    refused(run("calibration", "--data", tiny_data, "--plot", "--out", keep), "--out needs one of the extensions", 2)
    refused(run("evaluate", "--data", tiny_data, "--plot", "--out", tmp_path / "notes.csv"), "extensions", 2)
    refused(run("confusion", "--data", tiny_data, "--out", tiny_data / "Italian.txt"), "inside the dataset")
    refused(run("explain", "Jones", "--plot", tiny_data / "English.txt"), "--plot needs one of the extensions", 2)
    (tmp_path / "fake.png").write_bytes(before)
    refused(run("explain", "Jones", "--plot", tmp_path / "fake.png"), "a charclf checkpoint")
    assert keep.read_bytes() == before and (tmp_path / "fake.png").read_bytes() == before
    assert (tiny_data / "English.txt").read_text().startswith("Smith")


def test_plots_are_written_in_the_format_their_extension_names(tmp_path):
    pytest.importorskip("matplotlib")
    for name, magic in (("e.svg", b"<?xml"), ("e.pdf", b"%PDF"), ("e.png", b"\x89PNG")):
        for _ in range(2):  # the second replaces the first
            assert run("explain", "Jones", "--plot", tmp_path / name, "--no-show").exit_code == 0
        assert (tmp_path / name).read_bytes().startswith(magic)


# --- bounded reads ----------------------------------------------------------------------------


def test_a_closed_stdin_is_one_line():
    result = subprocess.run(["bash", "-c", f"{sys.executable} -m charclf predict --csv - --column name <&-"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.strip() == "Error: cannot read the table from stdin: it is closed"


def test_a_line_without_end_is_refused_before_it_is_held_whole(tmp_path):
    refused(run("predict", "--csv", "/dev/zero", "--column", "name"), "line 1 is longer than 16,777,216 bytes")
    cell = tmp_path / "cell.csv"
    cell.write_bytes(b'id,name\n1,"' + b"x" * (20 << 20) + b'"\n')
    refused(run("predict", "--csv", cell, "--column", "name"), "cell.csv, line 2 is longer than 16,777,216 bytes")
    lines = tmp_path / "lines.csv"  # a quoted cell of many short lines: the cell limit
    lines.write_bytes(b'id,name\n1,"' + b"xxxxxxx\n" * 40_000 + b'"\n')
    refused(run("predict", "--csv", lines, "--column", "name"), "a cell is longer than 131,072 characters")


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000 + "]" * 100_000, "nests deeper than 16 levels"),
    ("/dev/zero", "more than 1,048,576 bytes"),
])
def test_prior_files_are_read_bounded(tmp_path, content, message):
    path = Path(content) if content.startswith("/dev") else tmp_path / "prior.json"
    if not content.startswith("/dev"):
        path.write_text(content)
    refused(run("predict", "Jones", "--prior", path), message)


def test_prior_weights_of_1e308_keep_the_prior(tmp_path):  # already right before these checks; kept
    from charclf.predict.loading import load

    labels = load(SHIPPED_ONNX).labels
    path = tmp_path / "prior.json"
    path.write_text(json.dumps({label: 1e308 if label == "Italian" else 1.0 for label in labels}))
    answer = json.loads(run("predict", "Jones", "--json", "--prior", path).stdout)
    assert answer["label"] == "Italian" and answer["predictions"][0]["probability"] > 0.9


def test_letters_as_read_are_bounded_after_transliteration(tmp_path):
    names = tmp_path / "fdfa.txt"
    names.write_text(("\ufdfa" * 1000 + "\n") * 12 + "Jones\n")
    result = run("predict", "--file", names, "--json")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and len(answers) == 13 and answers[-1]["label"] == "English"
    assert all(a["label"] == "unknown" and "27,000 letters after transliteration" in a["reason"] for a in answers[:12])
    from charclf.predict.loading import load

    (p,) = load(SHIPPED_ONNX).predict(["\ufdfa" * 1000])
    assert p.abstained and "more than the 1,000" in p.reason


# --- tables that round-trip -------------------------------------------------------------------


def test_a_bare_cr_in_a_cell_is_quoted_and_read_back(tmp_path):
    source = tmp_path / "cr.csv"
    source.write_bytes(b'id,name\n1,"Jo\rnes"\n2,Smith\n3,Rossi\n')
    out = run("predict", "--csv", source, "--column", "name", "-k", "1").stdout
    read = rows(out)
    assert len(read) == 4 and read[1][1] == "Jo\rnes"
    again = tmp_path / "again.csv"
    again.write_text(out, newline="")
    assert rows(run("predict", "--csv", again, "--column", "name", "-k", "1").stdout)[1][1] == "Jo\rnes"


def test_cells_charclf_writes_are_never_formulas_and_input_cells_are_copied(tmp_path):
    formula = hostile.onnx_relabelled(SHIPPED_ONNX, tmp_path / "f.onnx", ["=1+2", "@SUM(A1)", "-3"])
    source = tmp_path / "t.csv"
    source.write_bytes(b"id,name\n1,=HYPERLINK(\"x\")\n2,+Smith\n3,\tTab\n")
    args = ["predict", "--csv", source, "--column", "name", "-k", "18", "--checkpoint", formula]
    plain, safe = rows(run(*args).stdout), rows(run(*args, "--excel-safe").stdout)
    assert [row[1] for row in plain[1:]] == ['=HYPERLINK("x")', "+Smith", "\tTab"]  # byte for byte by default
    assert [row[1] for row in safe[1:]] == ["'=HYPERLINK(\"x\")", "'+Smith", "'\tTab"]
    for table in (plain, safe):
        written = [c for row in table for c in row[2:]]
        assert {"'=1+2", "'@SUM(A1)", "'-3"} <= set(written)
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in written)


def test_duplicate_columns_and_impossible_delimiters_are_usage_errors(table):
    refused(run("predict", "--csv", table, "--column", "name", "--column", "name"), "given more than once", 2)
    refused(run("predict", "--csv", table, "--column", "name", "--column", "NAME"), "given more than once", 2)
    for delimiter, what in (('"', "a quote"), ("'", "a quote"), (" ", "a space"), ("\r", "a line end"),
                            ("\n", "a line end"), (";;", "2 characters")):
        refused(run("predict", "--csv", table, "--column", "name", "--delimiter", delimiter), f"is {what}", 2)


def test_cr_only_line_ends_are_read(tmp_path):
    source = tmp_path / "mac.csv"
    source.write_bytes(b"id,name\r1,Smith\r2,Rossi\r")
    read = rows(run("predict", "--csv", source, "--column", "name", "-k", "1").stdout)
    assert [row[:3] for row in read] == [["id", "name", "label"], ["1", "Smith", "English"], ["2", "Rossi", "Italian"]]


def test_a_missing_column_of_a_wide_table_is_a_short_error(tmp_path):
    source = tmp_path / "wide.csv"
    source.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n" + ",".join("x" * 1_000_000) + "\n")
    result = refused(run("predict", "--csv", source, "--column", "name"), "(1,000,000 in all)", 2)
    assert len(result.stderr) < 300


def test_predict_dataframe_refuses_cells_that_are_not_names_and_bad_options():
    pd = pytest.importorskip("pandas")
    from charclf.errors import DataError
    from charclf.predict.frames import predict_dataframe
    from charclf.predict.loading import load

    clf = load(SHIPPED_ONNX)
    for value in (True, float("inf"), b"Hinton", ["Jones"], 12345):
        with pytest.raises(DataError, match=r"column 'name', row 1: .* is not a name"):
            predict_dataframe(pd.DataFrame({"name": ["Jones", value]}), classifier=clf)
    frame = predict_dataframe(pd.DataFrame({"name": ["Jones", None, float("nan")]}), classifier=clf)
    assert pd.isna(frame["error"][0]) and list(frame["error"][1:]) == ["empty name", "empty name"]
    for options in ({"k": 0}, {"min_confidence": float("nan")}, {"min_confidence": 2}):
        with pytest.raises(ValueError, match="k must be|min_confidence must be"):
            predict_dataframe(pd.DataFrame({"name": ["Jones"]}), classifier=clf, **options)


# --- .onnx files ------------------------------------------------------------------------------


def _onnx_cases(tmp_path):
    import onnx

    desc = json.loads(next(p.value for p in onnx.load(str(SHIPPED_ONNX)).metadata_props
                           if p.key == "charclf.description"))
    cfg, labels, alphabet = desc["model_config"], desc["labels"], desc["alphabet"]
    upper = "".join(dict.fromkeys(alphabet.upper()))
    extra = "".join(c for c in "0123456789" if c not in alphabet)
    made = {
        "fewer labels": ({"labels": labels[:-1], "model_config": {**cfg, "n_classes": len(labels) - 1},
                          "calibration": {**desc["calibration"],
                                          "train_counts": desc["calibration"]["train_counts"][:-1]},
                          "scripts": {}}, "but it has 17 labels"),
        "long alphabet": ({"alphabet": alphabet + extra, "model_config": {**cfg, "n_letters": len(alphabet + extra)}},
                          "cannot read its own alphabet"),
        "upper case": ({"alphabet": upper, "model_config": {**cfg, "n_letters": len(upper), "lowercase": True}},
                       "lacks the lower case"),
        "script list": ({"scripts": {"probabilities": {labels[0]: ["Latin", 1]}}}, "script table"),
        "script 1e308": ({"scripts": {"probabilities": {labels[0]: {"Latin": 1e308}}}}, "script table"),
        "deep": ("[" * 100_000 + "]" * 100_000, "nests deeper than 16 levels"),
    }
    for name, (change, message) in made.items():
        yield name, hostile.onnx_with(SHIPPED_ONNX, tmp_path / f"{name}.onnx", change), message
    yield "foreign graph", hostile.foreign_onnx(SHIPPED_ONNX, tmp_path / "foreign.onnx"), "cannot read its own alphabet"
    yield ("64 GB a letter", hostile.hungry_onnx(SHIPPED_ONNX, tmp_path / "hungry.onnx"),
           "more than the 2,147,483,648 bytes")


def test_hostile_onnx_files_are_one_line_for_predict_and_info(tmp_path):
    pytest.importorskip("onnx")
    for name, path, message in _onnx_cases(tmp_path):
        refused(run("predict", "Jones", "--checkpoint", path), message)
        refused(run("info", "--checkpoint", path), message)


# --- data fetch and SIGTERM -------------------------------------------------------------------


def test_sigterm_during_data_fetch_removes_the_partial_download(tmp_path):
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2000000")
            self.end_headers()
            self.wfile.write(b"x" * 1024)
            self.wfile.flush()
            time.sleep(20)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/data.zip"
    process = subprocess.Popen([sys.executable, "-m", "charclf", "data", "fetch", "--dest", str(tmp_path / "names"),
                                "--url", url], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not any(tmp_path.glob(".names.fetch-*/archive.zip")) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    stderr = process.communicate(timeout=30)[1]
    server.server_close()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.strip().splitlines()[-1] == ("Error: stopped by SIGTERM; the partial download was removed and "
                                               "nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_train_side_files_and_compare_outputs_are_guarded(tmp_path, tiny_data):
    keep = tmp_path / "m.curves.png"  # where train would draw its curves: a checkpoint is there
    shutil.copy(shipped_checkpoint(), keep)
    refused(run("train", "--data", tiny_data, "--epochs", "1", "--no-progress", "--out", tmp_path / "m.pt"),
            "m.curves.png: it is a charclf checkpoint")
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "compare.json").write_bytes(keep.read_bytes())
    refused(run("compare", "--data", tiny_data, "--archs", "ngram", "--out-dir", tmp_path / "cmp"),
            "compare.json: it is a charclf checkpoint")
    assert keep.read_bytes() == (tmp_path / "cmp" / "compare.json").read_bytes() == shipped_checkpoint().read_bytes()
    assert not (tmp_path / "m.pt").exists()
