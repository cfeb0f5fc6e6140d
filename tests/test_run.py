"""The papermill runner: validation before execution, failure handling, and the smoke build."""
from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from minima import book, run
from minima.run import PlanError, Project

import browser


def write_notebook(path, parameters: str, body: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A test page"),
                nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def toy(tmp_path) -> Project:
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "notebooks" / "a_ok.ipynb",
                   "profile = 'default'\nsteps = 3\nrate = 0.5\nname = 'x'\nflag = False",
                   "from minima import data\nd = data.load('digits', 'test')\nprint(steps * rate, name, flag)")
    write_notebook(tmp_path / "notebooks" / "b_fails.ipynb", "steps = 1",
                   "raise ValueError('deliberate failure')")
    (tmp_path / "profiles.yml").write_text(
        "fast:\n  notebooks:\n    a_ok: {steps: 1}\nbroken:\n  notebooks:\n    a_ok: {stepz: 1}\n")
    return Project(tmp_path)


def test_plan_applies_profile_then_overrides_and_sets_profile(toy):
    (job,) = run.plan(toy, "fast", only=["a_ok"], overrides={"rate": 2})
    assert job.parameters == {"profile": "fast", "steps": 1, "rate": 2}


@pytest.mark.parametrize("kwargs, message", [
    (dict(profile="nope"), "unknown profile 'nope'; choose one of fast, broken"),
    (dict(profile="fast", only=["zzz"]), "unknown notebook(s) zzz; choose from a_ok, b_fails"),
    (dict(profile="broken"), "has no parameter 'stepz'; valid: profile, steps, rate, name, flag"),
    (dict(profile="fast", overrides={"speed": 1}), "unknown parameter(s) speed"),
    (dict(profile="fast", overrides={"steps": "many"}), "'steps' must be int"),
    (dict(profile="fast", overrides={"steps": 2.5}), "'steps' must be int"),
    (dict(profile="fast", overrides={"flag": 1}), "'flag' must be bool"),
    (dict(profile="fast", overrides={"name": 3}), "'name' must be str"),
])
def test_plan_refuses_bad_requests_listing_valid_choices(toy, kwargs, message):
    with pytest.raises(PlanError) as error:
        run.plan(toy, **kwargs)
    assert message in str(error.value)


def test_override_values_are_parsed_as_yaml():
    assert run.parse_override("seeds=[0, 1]") == ("seeds", [0, 1])
    assert run.parse_override("lr=1e-3") == ("lr", 1e-3)
    assert run.parse_override("flag=true") == ("flag", True)
    with pytest.raises(PlanError):
        run.parse_override("novalue")


def test_bad_request_runs_nothing(toy):
    assert run.run("fast", overrides={"steps": "x"}, project=toy) == 2
    assert not toy.generated.exists()


def test_success_writes_page_with_provenance_then_failure_removes_stale_page(toy, capsys):
    assert run.run("fast", only=["a_ok"], project=toy) == 0
    page = toy.generated / "a_ok.ipynb"
    nb = nbformat.read(page, as_version=4)
    record = nb.metadata["minima"]["provenance"]
    assert record["profile"] == "fast" and record["parameters"]["steps"] == 1
    assert record["datasets"][0]["name"] == "digits" and record["datasets"][0]["split"] == "test"
    assert json.loads((toy.generated / "provenance" / "a_ok.json").read_text()) == record
    assert "Provenance of this page" in nb.cells[1].source
    assert all("remove-cell" in c.metadata["tags"] for c in nb.cells if "parameters" in c.metadata.get("tags", []))

    # A failing notebook stops the batch with a non-zero code, names cell and error, and leaves no page.
    write_notebook(toy.notebooks / "a_ok.ipynb", "steps = 3", "raise RuntimeError('boom')")
    assert run.run("fast", project=toy) == 1
    err = capsys.readouterr().err
    assert "notebook a_ok failed at cell" in err and "RuntimeError: boom" in err
    assert not page.exists() and not (toy.generated / "provenance" / "a_ok.json").exists()
    assert not (toy.generated / "b_fails.ipynb").exists()  # the batch stopped before it


def test_cli_refuses_unknown_profile():
    result = subprocess.run([sys.executable, "-m", "minima", "run", "--profile", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown profile 'nope'; choose one of smoke, default, paper" in result.stderr


@pytest.mark.slow
def test_smoke_profile_builds_the_site_and_it_renders_offline(project_copy, real_data, monkeypatch):
    monkeypatch.setenv("MINIMA_DATA", str(real_data))
    project = Project(project_copy)
    assert run.run("smoke", project=project) == 0
    index = book.build(project_copy)
    html = project_copy / "_build" / "html"
    assert index.exists()
    pages = ["intro.html", "reproduction_notes.html", "generated/00_data_overview.html"]
    for page in pages:
        assert (html / page).exists(), page
    overview = (html / "generated" / "00_data_overview.html").read_text()
    assert "Provenance of this page" in overview and "mnist-10k" in overview
    assert "https://cdn" not in overview

    reason = browser.available()
    if reason:
        pytest.skip(f"browser check not run: {reason}")
    report = browser.inspect_page(html / "generated" / "00_data_overview.html")
    assert report["plotly_svgs"] > 0, "no plotly figure drew"
    assert report["external"] == [], f"requests left the machine: {report['external']}"
    math = browser.inspect_page(html / "intro.html")
    assert math["math"] > 0 and math["external"] == [], "MathJax did not typeset offline"
