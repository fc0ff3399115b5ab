"""Every number option has finite bounds on both sides and refuses NaN; every path option refuses
an empty path; an argument that is not UTF-8 is refused as a line of --file is. Through the real
command line (click's runner, or a process where a crash would show as a signal)."""

import math
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from charclf.cli import main
from charclf.cli.params import FilePath, FiniteFloatRange, PredictFloat
from charclf.spark.__main__ import main as spark_main


def commands():
    """(command line, click command) for every command of `charclf` and `python -m charclf.spark`."""
    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command
    return [*walk(main, ["charclf"]), ("python -m charclf.spark", spark_main)]


def test_every_number_option_has_finite_bounds_and_refuses_nan():
    numbers = 0
    for line, command in commands():
        for param in command.params:
            kind = param.type
            assert not isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)) or isinstance(
                kind, (click.IntRange, click.FloatRange)), f"{line} {param.name}: a number without bounds"
            if isinstance(kind, (click.IntRange, click.FloatRange)):
                numbers += 1
                assert kind.min is not None and kind.max is not None, f"{line} {param.name}: {kind!r}"
                assert math.isfinite(kind.min) and math.isfinite(kind.max), f"{line} {param.name}: {kind!r}"
            if isinstance(kind, click.FloatRange):  # NaN passes every comparison click makes
                assert isinstance(kind, (FiniteFloatRange, PredictFloat)), f"{line} {param.name}: NaN passes"
                with pytest.raises(click.UsageError):
                    kind.convert("nan", param, None)
    assert numbers > 40


def test_every_path_option_refuses_an_empty_path():
    paths = [(line, param) for line, command in commands() for param in command.params
             if isinstance(param.type, click.Path)]
    assert len(paths) > 15 and all(isinstance(param.type, FilePath) for _, param in paths), paths


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def usage_error(result, words: str):
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert words in result.stderr.strip().splitlines()[-1], result.stderr


@pytest.mark.parametrize("args, words", [
    (["serve", "--header-timeout", "nan"], "'nan' is not a finite number"),
    (["serve", "--idle-timeout", "nan"], "'nan' is not a finite number"),
    (["serve", "--drain-timeout", "inf"], "inf is not in the range 0<=x<=86400"),
    (["serve", "--threads", "1000000"], "1000000 is not in the range 1<=x<=1024"),
    (["predict", "Jones", "--threads", "1000000"], "1000000 is not in the range 1<=x<=1024"),
    (["predict", "Jones", "--threads", "99999999999"], "99999999999 is not in the range 1<=x<=1024"),
    (["train", "--threads", "1000000"], "1000000 is not in the range 1<=x<=1024"),
    (["calibration", "--bins", "100000000"], "100000000 is not in the range 1<=x<=1000"),
    (["lab", "memory", "--distances", "10000000"], "distance 10000000 is too long for 1000 sequences"),
    (["lab", "memory", "--distances", "1" + "0" * 22], "is too long for 1000 sequences"),
    (["lab", "memory", "--distances", "1e22"], "whole numbers separated by commas"),
    (["explain", "Jones", "-k", "nan"], "'nan' is not a valid integer"),
])
def test_huge_and_nan_numbers_are_one_line_usage_errors(args, words):
    usage_error(run(*args), words)


def test_a_million_threads_is_refused_before_any_library_sees_it(monkeypatch):
    """A process: a crash inside torch or ONNX Runtime would be a signal, not an exit code."""
    monkeypatch.setenv("CHARCLF_THREADS", "1000000")
    done = subprocess.run([sys.executable, "-m", "charclf", "predict", "Jones"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == (
        "Error: $CHARCLF_THREADS must be a whole number of threads from 1 to 1024; got '1000000'"), done.stderr


@pytest.mark.parametrize("args, option", [
    (["predict", "Jones", "--checkpoint", ""], "--checkpoint"), (["info", "--checkpoint", ""], "--checkpoint"),
    (["explain", "Jones", "--checkpoint", ""], "--checkpoint"), (["evaluate", "--checkpoint", ""], "--checkpoint"),
    (["serve", "--checkpoint", ""], "--checkpoint"), (["train", "--out", ""], "--out"),
    (["predict", "--csv", "t.csv", "--out", ""], "--out"), (["evaluate", "--plot", "--out", ""], "--out"),
    (["explain", "Jones", "--plot", ""], "--plot"), (["export", ""], "OUT"),
])
def test_an_empty_path_is_a_usage_error(args, option):
    usage_error(run(*args), f"Invalid value for '{option}': an empty path: give a file name")


def test_an_argument_that_is_not_utf8_is_refused_as_a_line_of_file_is(tmp_path):
    """The bytes reach the process as they would from a shell; the JSON names the line's error
    and holds U+FFFD where the bytes were, never a lone surrogate."""
    done = subprocess.run([sys.executable.encode(), b"-m", b"charclf", b"predict", b"\xff\xfeab", b"Jones", b"--json"],
                          capture_output=True, timeout=120)
    rows = done.stdout.decode().splitlines()
    assert done.returncode == 1 and len(rows) == 2, done.stderr
    assert rows[0].startswith('{"name": "\\ufffd\\ufffdab", "error": "argument 1 is not valid UTF-8"')
    assert '"label": "English"' in rows[1] and "\\udc" not in done.stdout.decode()
    (tmp_path / "names.txt").write_bytes(b"\xff\xfeab\nJones\n")
    by_file = subprocess.run([sys.executable, "-m", "charclf", "predict", "--file", str(tmp_path / "names.txt"),
                              "--json"], capture_output=True, timeout=120)
    assert by_file.stdout.decode().splitlines()[0] == rows[0].replace("argument 1", "line 1")
    explained = subprocess.run([sys.executable.encode(), b"-m", b"charclf", b"explain", b"\xff\xfeab"],
                               capture_output=True, timeout=120)
    assert explained.returncode == 2 and explained.stderr.decode().splitlines()[-1] == \
        "Error: '\ufffd\ufffdab': argument 1 is not valid UTF-8"


def test_serve_refuses_an_empty_address_which_would_listen_on_every_one():
    usage_error(run("serve", "--host", ""), "Invalid value for '--host': an empty address: give one")
