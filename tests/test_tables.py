"""predict --csv through the CLI: every row back, in order, with its cells and the answers."""

import csv
import io
import subprocess
import sys
import textwrap

import pytest

from tests.test_cli import ok, run

ANSWERS = ["label", "probability", "label_2", "probability_2", "label_3", "probability_3", "error", "model"]


def table(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def predicted(*names):
    """{name: (label, probability)} as `charclf predict --json` answers them (the shipped model)."""
    import json

    rows = [json.loads(line) for line in ok("predict", *names, "--json").stdout.splitlines()]
    return {r["name"]: (r["predictions"][0]["label"], f"{r['predictions'][0]['probability']:.6f}") for r in rows}


@pytest.fixture
def people(tmp_path):
    """A spreadsheet's export: a BOM, quoted commas, a newline inside a cell, duplicates, empty names."""
    path = tmp_path / "people.csv"
    path.write_bytes("\ufeffid,surname,note\r\n"
                     '1,Hinton,"London, UK"\r\n'
                     '2,Иванов,"two\nlines"\r\n'
                     "3,,no name\r\n"
                     "4,Hinton,again\r\n"
                     "5,12345,digits only\r\n"
                     "6,Nakamura,\r\n"
                     "7,Hinton,\r\n".encode())
    return path


def test_every_row_comes_back_in_order_with_its_cells_and_answers(people, tmp_path):
    out = ok("predict", "--csv", people, "--column", "surname").stdout
    rows = table(out)
    source = table(people.read_text(encoding="utf-8-sig"))
    assert rows[0] == source[0] + ANSWERS
    assert len(rows) == len(source) == 8
    assert [row[:3] for row in rows] == source  # every original cell, in order
    assert rows[2][2] == "two\nlines" and rows[1][2] == "London, UK"
    by_id = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    expected = predicted("Hinton", "Иванов", "Nakamura")
    assert (by_id["1"]["label"], by_id["1"]["probability"]) == expected["Hinton"]
    assert (by_id["2"]["label"], by_id["2"]["probability"]) == expected["Иванов"]
    assert [by_id[i]["label"] for i in "147"] == [expected["Hinton"][0]] * 3  # duplicates: each answered
    assert by_id["3"]["error"] == "empty name" and by_id["3"]["label"] == ""
    assert "no letters" in by_id["5"]["error"] and by_id["5"]["probability"] == ""
    assert by_id["6"]["error"] == "" and float(by_id["6"]["probability"]) > 0.5
    probabilities = [float(by_id["1"][f]) for f in ("probability", "probability_2", "probability_3")]
    assert probabilities == sorted(probabilities, reverse=True)


def test_out_file_tsv_by_extension_and_stdin(people, tmp_path):
    expected = ok("predict", "--csv", people, "--column", "surname").stdout
    tsv = tmp_path / "people.tsv"
    with open(tsv, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows(table(people.read_text(encoding="utf-8-sig")))
    result = ok("predict", "--csv", tsv, "--column", "surname", "--out", tmp_path / "out.tsv")
    assert "wrote 7 rows to" in result.stderr and result.stdout == ""
    written = table((tmp_path / "out.tsv").read_text(encoding="utf-8"), "\t")
    assert written[0] == ["id", "surname", "note", *ANSWERS]
    assert [row[3:] for row in written] == [row[3:] for row in table(expected)]
    # stdin: the delimiter is sniffed (here tab) and the same table comes out.
    piped = ok("predict", "--csv", "-", "--column", "surname", input=tsv.read_bytes()).stdout
    assert table(piped, "\t") == written


def test_other_delimiters(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("surname;city\nRossi;Roma\nSmith;Leeds\n", encoding="utf-8")
    sniffed = table(ok("predict", "--csv", path, "--column", "surname").stdout, ";")
    given = table(ok("predict", "--csv", path, "--column", "surname", "--delimiter", ";").stdout, ";")
    assert sniffed == given
    assert [row[:2] for row in given] == [["surname", "city"], ["Rossi", "Roma"], ["Smith", "Leeds"]]
    tabbed = tmp_path / "tabbed.data"
    tabbed.write_text("a\tsurname\nx\tRossi\n", encoding="utf-8")
    rows = table(ok("predict", "--csv", tabbed, "--column", "surname", "--delimiter", "tab").stdout, "\t")
    assert rows[1][:2] == ["x", "Rossi"] and rows[1][2] == given[1][2]
    assert run("predict", "--csv", path, "--delimiter", ";;").exit_code == 2


def test_invalid_utf8_names_its_line_or_is_replaced(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,surname\n1,Rossi\n2,\"Mul\nler\"\n3,Sm\xffith\n4,Tanaka\n")
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    result = run("predict", "--csv", path, "--column", "surname", "--out", out)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad.csv, line 5: not valid UTF-8 (byte 0xff at column 5)" in result.stderr
    assert "--encoding-errors replace" in result.stderr
    assert out.read_text() == "precious\n"  # an existing output is only replaced by a finished run
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.csv")] == []
    rows = table(ok("predict", "--csv", path, "--column", "surname", "--encoding-errors", "replace").stdout)
    assert [row[1] for row in rows] == ["surname", "Rossi", "Mul\nler", "Sm\ufffdith", "Tanaka"]
    assert all(row[2] for row in rows[1:])  # every name answered


def test_all_probs_min_confidence_and_several_columns(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("first,last\nMaria,Rossi\nJohn,Smith\n,Nakamura\n", encoding="utf-8")
    rows = table(ok("predict", "--csv", path, "--column", "last", "--all-probs", "-k", "2").stdout)
    header = rows[0]
    label_columns = [h for h in header if h.startswith("probability_") and not h[-1].isdigit()]
    assert len(label_columns) == 18
    assert header[:6] == ["first", "last", "label", "probability", "label_2", "probability_2"]
    for row in rows[1:]:
        cells = dict(zip(header, row))
        shares = {h.removeprefix("probability_"): float(cells[h]) for h in label_columns}
        assert sum(shares.values()) == pytest.approx(1, abs=1e-4)
        assert max(shares, key=shares.get) == cells["label"]
    both = table(ok("predict", "--csv", path, "--column", "first", "--column", "last",
                    "--min-confidence", "0.99").stdout)
    group = ["label", "probability", "label_2", "probability_2", "label_3", "probability_3", "abstained",
             "best_guess", "reason", "error", "model"]
    assert both[0] == ["first", "last"] + [f"first_{f}" for f in group] + [f"last_{f}" for f in group]
    cells = dict(zip(both[0], both[3]))
    assert cells["first_error"] == "empty name" and cells["last_error"] == ""
    for row in both[1:]:
        cells = dict(zip(both[0], row))
        if cells["last_abstained"] == "true":
            assert cells["last_label"] == "unknown" and float(cells["last_probability"]) < 0.99
            assert cells["last_best_guess"] not in ("", "unknown")
        else:
            assert cells["last_label"] == cells["last_best_guess"] and float(cells["last_probability"]) >= 0.99
    assert any(dict(zip(both[0], row))["last_abstained"] == "true" for row in both[1:])


def test_answer_columns_never_overwrite_the_tables_own(tmp_path):
    path = tmp_path / "labelled.csv"
    path.write_text("name,label\nRossi,Italian\n", encoding="utf-8")
    rows = table(ok("predict", "--csv", path, "--column", "name").stdout)
    assert rows[0][:4] == ["name", "label", "name_label", "name_probability"]
    assert rows[1][:2] == ["Rossi", "Italian"]


@pytest.mark.parametrize("args, message", [
    (["--column", "Surname2"], "no column 'Surname2' in"),
    ([], "name the column of names to classify with --column"),
])
def test_a_missing_column_lists_the_columns(people, args, message):
    result = run("predict", "--csv", people, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert "its columns: 'id', 'surname', 'note'" in result.stderr \
        or "has columns 'id', 'surname', 'note'" in result.stderr
    assert result.stdout == ""


def test_column_names_match_without_case_and_a_one_column_table_needs_none(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("Surname\nRossi\nSmith\n")
    rows = table(ok("predict", "--csv", one).stdout)
    assert [row[0] for row in rows] == ["Surname", "Rossi", "Smith"] and rows[1][1] == "Italian"
    assert table(ok("predict", "--csv", one, "--column", "surname ").stdout) == rows


@pytest.mark.parametrize("args, message", [
    (["--file", "people.csv"], "looks like a table: use --csv people.csv --column NAME"),
    (["Jones", "--column", "surname"], "--column only go(es) with --csv"),
    (["--file", "x.txt", "--out", "o.csv", "--all-probs"], "--out, --all-probs only go(es) with --csv"),
    (["--csv", "x.csv", "Jones"], "give no names, --file or --json"),
    (["--csv", "x.csv", "--json"], "give no names, --file or --json"),
])
def test_table_usage_errors(args, message):
    result = run("predict", *args)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_an_empty_or_unreadable_table_is_one_line(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = run("predict", "--csv", empty)
    assert result.exit_code == 1 and "has no header row" in result.stderr
    result = run("predict", "--csv", tmp_path / "missing.csv")
    assert result.exit_code == 1 and "cannot read" in result.stderr
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,surname\n1,Rossi,extra\n")
    result = run("predict", "--csv", ragged, "--column", "surname")
    assert result.exit_code == 1 and "ragged.csv, line 2: 3 cells, but the header has 2" in result.stderr


def peak_rss_mb(tmp_path, rows: int) -> float:
    """Peak resident memory (MB) of `charclf predict --csv` over a table of `rows` wide rows."""
    path = tmp_path / f"rows{rows}.csv"
    names = ["Hinton", "Rossi", "Nakamura", "Ivanov", "Schmidt", "Nguyen", "O'Brien", ""]
    note = "n" * 400  # wide rows: holding them all would show
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,surname,note\n")
        f.writelines(f"{i},{names[i % len(names)]},{note}\n" for i in range(rows))
    out = tmp_path / f"out{rows}.csv"
    script = textwrap.dedent(f"""
        import resource, subprocess, sys
        subprocess.run([sys.executable, "-m", "charclf", "predict", "--csv", {str(path)!r}, "--column", "surname",
                        "--out", {str(out)!r}, "--threads", "1", "--batch-size", "1000", "-q"],
                       check=True)
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """)
    kib = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    with open(out, encoding="utf-8") as f:
        assert sum(1 for _ in f) == rows + 1
    return int(kib) / 1024


def test_memory_stays_flat_from_10k_to_100k_rows(tmp_path):
    small, large = peak_rss_mb(tmp_path, 10_000), peak_rss_mb(tmp_path, 100_000)
    # 100k rows of 420 bytes are 42 MB of text, and far more as Python objects: none may stay
    # (read whole, the 100k-row table peaked 200 MB above the 10k-row one).
    assert large - small < 15, (small, large)


def test_predict_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    import charclf

    frame = pd.DataFrame({"surname": ["Hinton", None, "Иванов", "Hinton", ""], "n": [1, 2, 3, 4, 5]},
                         index=[10, 20, 30, 40, 50])
    clf = charclf.load(device="cpu")
    result = charclf.predict_dataframe(frame, "surname", k=2, classifier=clf)
    assert list(result.columns) == ["surname", "n", "label", "probability", "label_2", "probability_2", "error",
                                    "model"]
    assert list(result.index) == [10, 20, 30, 40, 50] and list(frame.columns) == ["surname", "n"]
    expected = predicted("Hinton", "Иванов")
    assert result.loc[10, "label"] == expected["Hinton"][0]
    assert f"{result.loc[30, 'probability']:.6f}" == expected["Иванов"][1]
    assert result.loc[40, "label"] == result.loc[10, "label"]
    assert result.loc[20, "error"] == "empty name" and result.loc[50, "error"] == "empty name"
    assert pd.isna(result.loc[10, "error"]) and pd.isna(result.loc[20, "label"])
    with_probs = charclf.predict_dataframe(frame, ["surname"], classifier=clf, all_probs=True, min_confidence=0.5)
    assert with_probs.loc[10, "abstained"] in (True, False) and "probability_English" in with_probs.columns
    with pytest.raises(charclf.CharclfError, match="no column 'last'"):
        charclf.predict_dataframe(frame, "last", classifier=clf)
