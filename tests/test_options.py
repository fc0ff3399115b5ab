"""predict's options are checked once (charclf.predict.options.PredictOptions): each bad value is
the same message from the command line, the Python API, predict_dataframe and the server, only
the option's name spelled as each door spells it."""

import re

import pytest

from charclf.predict.options import OptionError, PredictOptions

from tests.test_cli import run

# (command-line arguments, Python keywords, query parameters), each a bad value or combination.
CASES = [
    (["-k", "0"], {"k": 0}, {"top_k": "0"}),
    (["--top", "-2"], {"k": -2}, {"top_k": "-2"}),
    (["--min-confidence", "1.5"], {"min_confidence": 1.5}, {"min_confidence": "1.5"}),
    (["--min-confidence", "nan"], {"min_confidence": float("nan")}, {"min_confidence": "nan"}),
    (["--coverage", "1"], {"coverage": 1}, {"coverage": "1"}),
    (["--coverage", "0"], {"coverage": 0.0}, {"coverage": "0"}),
    (["--coverage", "0.9", "--prior", "uniform"], {"coverage": 0.9, "prior": "uniform"},
     {"coverage": "0.9", "prior": "uniform"}),
]
CLI = {"k": "-k", "min_confidence": "--min-confidence", "coverage": "--coverage", "prior": "--prior"}
QUERY = {"k": "top_k"}


def named(error: OptionError, spelling: dict) -> str:
    return f"{' and '.join(spelling.get(n, n) for n in error.names)} {error.problem}"


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("fastapi", reason="the serve extra: pip install -e '.[test,serve]'")
    from starlette.testclient import TestClient

    import charclf
    from charclf.server.app import create_app
    from charclf.server.settings import Settings

    with TestClient(create_app(charclf.load(), Settings(), keys=[]), base_url="http://localhost") as client:
        yield client


@pytest.mark.parametrize("args, keywords, query", CASES)
def test_each_bad_option_is_one_message_at_every_door(server, args, keywords, query):
    import charclf

    with pytest.raises(OptionError) as raised:
        PredictOptions(**keywords)
    error = raised.value
    assert error.problem.startswith(("must be", "cannot be combined"))
    assert str(error) == named(error, {})  # Python: k, min_confidence, coverage, prior
    with pytest.raises(ValueError) as api:  # an OptionError is a ValueError, as the API's errors were
        charclf.load().predict(["Jones"], **keywords)
    assert str(api.value) == str(error)
    pd = pytest.importorskip("pandas")
    with pytest.raises(OptionError, match="^" + re.escape(str(error)) + "$"):
        charclf.predict_dataframe(pd.DataFrame({"name": ["Jones"]}), **keywords)
    for extra in ([], ["--csv", "-", "--column", "name"]):  # names, and a table
        result = run("predict", *(["Jones"] if not extra else []), *args, *extra, input="name\nJones\n")
        assert result.exit_code == 2 and result.stderr.strip().splitlines()[-1] == f"Error: {named(error, CLI)}"
    for method, path, extra in (("GET", "/api/predict", {"name": "Jones"}), ("POST", "/api/predict", {})):
        for headers in ({}, {"Origin": "https://elsewhere.example"}):  # the guard's direct call, and FastAPI's
            answer = server.request(method, path, params={**query, **extra}, json=["Jones"], headers=headers)
            assert answer.status_code == 400 and answer.json() == {"error": named(error, QUERY)}


def test_good_options_pass_through_every_door_unchanged(server):
    import charclf

    options = PredictOptions(k=2, min_confidence=0.5, coverage=0.9, full_names=True)
    assert options.keywords() == {"k": 2, "min_confidence": 0.5, "coverage": 0.9, "prior": None, "full_names": True}
    expected = charclf.load().predict(["Nguyen Van An"], **options.keywords())[0].to_dict()
    answer = server.get("/api/predict", params={"name": "Nguyen Van An", "top_k": 2, "min_confidence": 0.5,
                                                "coverage": 0.9, "full_name": "true"})
    assert answer.status_code == 200 and answer.json() == expected
    assert PredictOptions(prior="train", coverage=0.9).coverage == 0.9  # train is the population the sets hold for
    with pytest.raises(OptionError, match="full_names must be true or false, got 'yes'"):
        PredictOptions(full_names="yes")
    with pytest.raises(OptionError, match="k must be a whole number >= 1, got 2.5"):
        PredictOptions(k=2.5)
