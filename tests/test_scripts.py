"""Script detection, the usual readings, and the script evidence combined with the network:
unit tests, then through the real CLI with the shipped model and a custom Cyrillic dataset."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import charclf
from charclf.cli import main
from charclf.files.checkpoint import load_checkpoint
from charclf.names import reader, readings
from charclf.names.scripts import SCRIPTS, detect_script, latin_diacritics
from charclf.predict.evidence import BUILTIN_LABELS, NON_NATIVE, ScriptEvidence, combine, learn

PRETRAINED = Path(__file__).resolve().parents[1] / "charclf/pretrained/model.pt"
NATIVE = Path(__file__).resolve().parent / "data/native_names.tsv"
NATIVE_ROWS = [line.split("\t") for line in NATIVE.read_text(encoding="utf-8").splitlines()
               if line and not line.startswith("#")]


def ok(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def predict_json(*names, checkpoint=PRETRAINED):
    out = ok("predict", *names, "--json", "-k", "18", "--checkpoint", checkpoint)
    return [json.loads(line) for line in out.splitlines()]


# --- detection -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, label, script", NATIVE_ROWS)
def test_every_benchmark_name_is_detected_in_its_script(name, label, script):
    assert detect_script(name) == script


@pytest.mark.parametrize("name, script", [
    ("Smith", "Latin"), ("O'Neil", "Latin"), ("Mu\u0308ller", "Latin with diacritics"),  # combining mark
    ("山田はなこ", "kana"), ("ｶﾀｶﾅ", "kana"), ("ヤマダ・タロウ", "kana"), ("コーヒー", "kana"),
    ("כהן", "Hebrew"), ("शर्मा", "Devanagari"), ("สมชาย", "Thai"), ("Ⴑ", "other"),
    ("12345", "other"), ("😀", "other"), ("", "other"), ("Ivan Иванов Петров", "Cyrillic"),
])
def test_detect_script(name, script):
    assert detect_script(name) == script and script in SCRIPTS


def test_latin_diacritics_are_lower_cased_and_composed():
    assert latin_diacritics("ŁUKASZ Mu\u0308ller") == {"ł", "ü"}
    assert latin_diacritics("Smith") == set()


# --- readings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, reading", [
    ("김", "Kim"), ("이", "Lee"), ("박", "Park"), ("최", "Choi"), ("김민준", "Kim Minjun"),
    ("남궁민수", "Namgoong Minsu"), ("선우", "Sun U"), ("뷁", None),  # not a family name in the table
])
def test_korean_family_names_as_usually_spelt(name, reading):
    assert readings.korean_reading(name) == reading


@pytest.mark.parametrize("name, reading", [("حسن", "Hasan"), ("منصور", "Manasour"), ("الخوري", "Khouri"),
                                           ("علي", "Ali"), ("فاطمة", "Fatama"), ("כהן", None)])
def test_arabic_reading_writes_a_short_vowel_between_consonants(name, reading):
    assert readings.arabic_reading(name) == reading
    if reading:
        read = reader.read(name)
        assert (read.as_read, read.caveats) == (reading, (readings.ARABIC_GUESSED,))  # the guess is said


@pytest.mark.parametrize("hepburn, plain", [("satou", "sato"), ("oono", "ono"), ("yuuki", "yuki"),
                                            ("inoue", "inoue"), ("tarou", "taro"), ("shouji", "shoji")])
def test_plain_hepburn_drops_long_vowels_but_not_vowel_pairs(hepburn, plain):
    assert readings.plain_hepburn(hepburn) == plain


def test_japanese_reading_with_pykakasi():
    pytest.importorskip("pykakasi")
    assert readings.japanese_reading("佐藤") == "Sato"
    assert readings.japanese_reading("やまだ たろう") == "Yamada Taro"
    assert readings.japanese_reading("张") is None  # a simplified Chinese character has no Japanese reading
    assert reader.read("山田").own == (("Japanese", "Yamada"),)


def test_without_pykakasi_kanji_is_read_as_mandarin_only(monkeypatch):
    monkeypatch.setattr(readings, "_kakasi", lambda: None)
    assert reader.read("山田").own == ()
    kana = reader.read("やまだ")
    assert (kana.as_read, kana.caveats) == ("Yamada", ())  # anyascii's reading of kana
    assert reader.read("山田").as_read == "Shantian"


def test_training_reads_latin_names_exactly_as_the_tutorial_folding():
    from charclf.names.text import fold

    for name in ["Smith", "Ślusàrski", "Foo\xa0Bar", "Müller", "O'Neil", "12 Smith"]:
        assert reader.training_reading(name) == fold(name)
    assert reader.training_reading("Иванов") == "Ivanov"  # was folded to nothing


# --- the combination -----------------------------------------------------------------------------

def test_combine_is_the_renormalised_product():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    likelihoods = np.array([[1.0, 0.01, 0.01], [0.2, 0.2, 0.2]])
    posterior = combine(p, likelihoods)
    assert np.allclose(posterior.sum(1), np.ones(2))
    expected = p[0] * likelihoods[0] / (p[0] * likelihoods[0]).sum()
    assert np.allclose(posterior[0], expected)
    assert np.allclose(posterior[1], p[1])  # equal likelihoods: no evidence, nothing changes


def test_combine_keeps_a_row_whose_product_vanishes():
    p = np.array([[1.0, 0.0]])
    assert np.array_equal(combine(p, np.array([[0.0, 1.0]])), p)


def test_learned_table_is_smoothed_so_that_every_script_stays_possible_for_every_label():
    counts = {"Russian": {"Cyrillic": 40}, "English": {"Latin": 40}}
    table = learn(["English", "Russian"], counts)["probabilities"]
    for label in ("English", "Russian"):
        assert sum(table[label].values()) == pytest.approx(1.0)
        assert all(p > 0 for p in table[label].values())
    assert table["Russian"]["Latin"] > 0 and table["English"]["Cyrillic"] > 0
    assert table["Russian"]["Cyrillic"] > 20 * table["English"]["Cyrillic"]
    evidence = ScriptEvidence(["English", "Russian"], table)
    p = np.array([[0.3, 0.7], [0.3, 0.7], [0.999, 0.001]])
    posterior = evidence.posterior([reader.read(n) for n in ["Ivanov", "Иванов", "Смит"]], p, score=None)
    assert np.array_equal(posterior[0], p[0])  # a Latin name: the network's probabilities as they were
    assert posterior[1, 1] > 0.95  # Cyrillic: Russian
    assert posterior[2, 0] > 0.5  # a Cyrillic name the network is sure of can still be English


def test_builtin_table_favours_native_labels_and_ignores_what_no_label_writes():
    evidence = ScriptEvidence(BUILTIN_LABELS)
    by_label = dict(zip(BUILTIN_LABELS, evidence.likelihoods("김민준")))
    assert by_label["Korean"] == 1 and by_label["Japanese"] == NON_NATIVE
    assert dict(zip(BUILTIN_LABELS, evidence.likelihoods("王")))["Chinese"] == 1
    native = {name: {label for label, x in zip(BUILTIN_LABELS, evidence.likelihoods(name)) if x == 1}
              for name in ["Łukasz", "Straße", "Muñoz", "Garçon", "Dvořák", "Conceição", "Đặng"]}
    assert native == {"Łukasz": {"Polish"}, "Straße": {"German"}, "Muñoz": {"Spanish"},
                      "Garçon": {"French", "Portuguese"}, "Dvořák": {"Czech"}, "Conceição": {"Portuguese"},
                      "Đặng": {"Vietnamese"}}
    for no_evidence in ["Erdős", "כהן", "शर्मा", "Smith"]:
        assert evidence.likelihoods(no_evidence) is None


# --- through the CLI -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, label", [
    ("김민준", "Korean"), ("박", "Korean"), ("たなか", "Japanese"), ("山田", "Japanese"), ("周", "Chinese"),
    ("محمد", "Arabic"), ("Иванов", "Russian"), ("Παπαδόπουλος", "Greek"), ("Nguyễn", "Vietnamese"),
    ("Łukasz", "Polish"), ("Weiß", "German"), ("Dvořák", "Czech"), ("Muñoz", "Spanish"),
])
def test_predict_puts_a_name_in_each_script_on_its_label(name, label):
    if name == "山田":
        pytest.importorskip("pykakasi")  # without it kanji is read as Mandarin only
    [row] = predict_json(name)
    assert row["label"] == label, row


def test_predict_json_reports_the_script_and_keeps_its_fields():
    rows = predict_json("김민준", "Smith", "Müller")
    assert [r["script"] for r in rows] == ["Hangul", "Latin", "Latin with diacritics"]
    assert all({"name", "as_read", "label", "abstained", "predictions"} <= set(r) for r in rows)
    assert rows[0]["as_read"] == "Kim Minjun"


def test_latin_names_are_unchanged_by_the_evidence_step():
    from charclf.predict.loading import load as load_model

    clf = load_model(PRETRAINED, device="cpu")
    names = ["Smith", "Satoshi", "Nguyen", "Kowalski", "O'Brien", "Rossi", "Schmidt", "Abe"]
    network = clf.probabilities(names)
    for name, row in zip(names, predict_json(*names)):
        got = {p["label"]: p["probability"] for p in row["predictions"]}
        want = {label: round(p, 6) for label, p in zip(clf.labels, network[names.index(name)].tolist())}
        assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("layout", ["folder", "csv"])
def test_a_custom_cyrillic_label_learns_its_script_and_keeps_it(tmp_path, layout):
    russian = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
               "Фёдоров", "Морозов", "Волков"]
    english = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Evans", "Thomas",
               "Roberts", "Walker"]
    if layout == "folder":
        data = tmp_path / "names"
        data.mkdir()
        (data / "Russian.txt").write_text("\n".join(russian) + "\n", encoding="utf-8")
        (data / "English.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    else:
        data = tmp_path / "names.csv"
        rows = [f"{name},Russian" for name in russian] + [f"{name},English" for name in english]
        data.write_text("name,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ckpt = tmp_path / "m.pt"
    ok("train", "--data", data, "--epochs", "1", "--hidden-size", "8", "--no-progress", "--out", ckpt)
    scripts = load_checkpoint(ckpt).scripts
    counts = scripts["counts"]
    assert set(counts["Russian"]) == {"Cyrillic"} and set(counts["English"]) == {"Latin"}
    assert 0 < sum(counts["Russian"].values()) <= len(russian)  # the training split's names only
    table = scripts["probabilities"]
    assert table["Russian"]["Cyrillic"] > 10 * table["English"]["Cyrillic"]
    assert table["Russian"]["Latin"] > 0
    [cyrillic, latin] = predict_json("Орлов", "Orlov", checkpoint=ckpt)
    assert cyrillic["script"] == "Cyrillic" and cyrillic["label"] == "Russian"
    assert cyrillic["predictions"][0]["probability"] > 0.9
    assert latin["as_read"] == "Orlov" and {p["label"] for p in latin["predictions"]} == {"English", "Russian"}
    network = charclf.load(ckpt, device="cpu").probabilities(["Orlov"])[0].tolist()
    assert {p["label"]: p["probability"] for p in latin["predictions"]} == pytest.approx(
        dict(zip(["English", "Russian"], network)), abs=1e-6)  # Latin: no evidence, also for a learned table


def test_a_checkpoint_without_a_script_table_still_loads(tmp_path):
    payload = torch.load(PRETRAINED, weights_only=True)
    payload.pop("scripts", None)  # as a model from before the table: the built-in facts apply
    payload["labels"] = [f"L{i}" for i in range(len(payload["labels"]))]
    torch.save(payload, tmp_path / "old.pt")
    [row] = predict_json("김민준", checkpoint=tmp_path / "old.pt")
    assert row["script"] == "Hangul" and row["label"].startswith("L")


@pytest.mark.parametrize("scripts", [["not", "a", "table"], {"probabilities": {"Korean": {"Hangul": 3.0}}},
                                     {"probabilities": {"Korean": "Hangul"}}])
def test_a_broken_script_table_is_a_one_line_error(tmp_path, scripts):
    payload = torch.load(PRETRAINED, weights_only=True)
    payload["scripts"] = scripts
    torch.save(payload, tmp_path / "bad.pt")
    result = CliRunner().invoke(main, ["predict", "Smith", "--checkpoint", str(tmp_path / "bad.pt")])
    assert result.exit_code == 1 and "script table" in result.output and "Traceback" not in result.output
