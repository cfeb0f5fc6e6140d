"""The papermill runner: validation before execution, failure handling, and the smoke build."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from minima import claims
from minima.book import jobs, site as book, runner as run
from minima.book.jobs import PlanError, Project

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
    (job,) = jobs.plan(toy, "fast", only=["a_ok"], overrides={"rate": 2})
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
        jobs.plan(toy, **kwargs)
    assert message in str(error.value)


def test_a_parameter_the_page_chooses_takes_a_number_or_choose(tmp_path):
    (tmp_path / "notebooks").mkdir()
    write_notebook(tmp_path / "notebooks" / "c_choice.ipynb", "decay = 'choose'", "print(decay)")
    (tmp_path / "profiles.yml").write_text("fast:\n  notebooks:\n    c_choice: {}\n")
    project = Project(tmp_path)
    for value in (0.01, 1, "choose"):
        (job,) = jobs.plan(project, "fast", overrides={"decay": value})
        assert job.parameters["decay"] == value
    with pytest.raises(PlanError, match="'decay' must be a number or 'choose'"):
        jobs.plan(project, "fast", overrides={"decay": "large"})


def test_override_values_are_parsed_as_yaml():
    assert jobs.parse_override("seeds=[0, 1]") == ("seeds", [0, 1])
    assert jobs.parse_override("lr=1e-3") == ("lr", 1e-3)
    assert jobs.parse_override("flag=true") == ("flag", True)
    with pytest.raises(PlanError):
        jobs.parse_override("novalue")


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
    assert "Provenance of this page" in nb.cells[-1].source and "dropdown" in nb.cells[-1].source
    assert all("remove-cell" in c.metadata["tags"] for c in nb.cells if "parameters" in c.metadata.get("tags", []))

    # A failing notebook stops the batch with a non-zero code, names cell and error, and leaves no page.
    write_notebook(toy.notebooks / "a_ok.ipynb", "steps = 3", "raise RuntimeError('boom')")
    assert run.run("fast", project=toy) == 1
    err = capsys.readouterr().err
    assert "notebook a_ok failed at cell" in err and "RuntimeError: boom" in err
    assert not page.exists() and not (toy.generated / "provenance" / "a_ok.json").exists()
    assert not (toy.generated / "b_fails.ipynb").exists()  # the batch stopped before it


def test_missing_data_gives_a_page_that_says_so_and_the_batch_goes_on(toy, capsys):
    write_notebook(toy.notebooks / "a_ok.ipynb", "steps = 1",
                   "from minima import data\nd = data.load('cola', 'train', '/nonexistent/folder')\nprint('after')")
    (toy.notebooks / "b_fails.ipynb").unlink()
    write_notebook(toy.notebooks / "c_next.ipynb", "steps = 1", "print('next ran')")
    assert run.run("fast", project=toy) == 0
    out = capsys.readouterr().out
    assert "a_ok skipped: data" in out and "c_next ok" in out
    page = nbformat.read(toy.generated / "a_ok.ipynb", as_version=4)
    text = "\n".join(c.source for c in page.cells)
    assert "This page was not computed: its data is missing" in text
    assert "/nonexistent/folder/cola/train.tsv" in text and "MINIMA_DATA" in text
    assert "# A test page" in text
    code = [c for c in page.cells if c.cell_type == "code"]
    assert code and all("remove-cell" in c.metadata.get("tags", []) and not c.outputs for c in code)
    assert json.loads((toy.generated / "provenance" / "a_ok.json").read_text())["status"] == "skipped: data"
    # a skipped page is never taken as up to date: the data may have arrived since
    assert run.run("fast", only=["a_ok"], project=toy) == 0
    assert "a_ok skipped: data" in capsys.readouterr().out


def test_unchanged_inputs_are_not_executed_again_unless_forced(toy, capsys, monkeypatch, tmp_path):
    assert run.run("fast", only=["a_ok"], project=toy) == 0
    page = toy.generated / "a_ok.ipynb"
    first = json.loads((toy.generated / "provenance" / "a_ok.json").read_text())
    assert len(first["input_hash"]) == 64 and first["input_hash"][:12] in nbformat.read(page, 4).cells[-1].source
    capsys.readouterr()

    assert run.run("fast", only=["a_ok"], project=toy) == 0
    assert "a_ok up to date" in capsys.readouterr().out
    assert json.loads((toy.generated / "provenance" / "a_ok.json").read_text())["date"] == first["date"]

    assert run.run("fast", only=["a_ok"], project=toy, force=True) == 0
    assert "a_ok ok" in capsys.readouterr().out

    # another parameter value, or another data folder, makes the page stale
    assert run.run("fast", only=["a_ok"], project=toy, overrides={"rate": 0.25}) == 0
    assert "a_ok ok" in capsys.readouterr().out
    assert run.run("fast", only=["a_ok"], project=toy, overrides={"rate": 0.25}) == 0
    assert "a_ok up to date" in capsys.readouterr().out
    monkeypatch.setenv("MINIMA_DATA", str(tmp_path))
    assert run.run("fast", only=["a_ok"], project=toy, overrides={"rate": 0.25}) == 0
    assert "a_ok ok" in capsys.readouterr().out


def test_input_hash_follows_the_data_files_the_run_read(toy, tmp_path):
    (job,) = jobs.plan(toy, "fast", only=["a_ok"])
    data_file = tmp_path / "file.bin"
    data_file.write_bytes(b"one")
    datasets = [{"name": "x", "files": {str(data_file): "whatever"}}]
    before = run.input_hash(toy, job, datasets)
    assert run.input_hash(toy, job, datasets) == before
    data_file.write_bytes(b"two")
    assert run.input_hash(toy, job, datasets) != before
    data_file.unlink()
    assert run.input_hash(toy, job, datasets) != before


def test_progress_bars_and_chatter_reach_the_terminal_not_the_page(toy, capfd):
    write_notebook(toy.notebooks / "a_ok.ipynb", "steps = 1", "\n".join([
        "from minima.core.progress import progress, terminal_only",
        "total = sum(progress(range(30000), desc='busy', mininterval=0))",
        "with terminal_only():",
        "    print('load report: 12 weights newly initialised')",
        "    import warnings; warnings.warn('a library warning')",
        "print('result', total)"]))
    assert run.run("fast", only=["a_ok"], project=toy) == 0
    page = nbformat.read(toy.generated / "a_ok.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in page.cells])
    assert "result 449985000" in outputs
    for trace in ("busy", "it/s", "load report", "a library warning"):
        assert trace not in outputs, trace
    terminal = capfd.readouterr().err
    assert "busy" in terminal  # the bar went to the terminal that ran the batch
    assert "without encryption" not in terminal, "kernels talk over IPC: no transport warning per notebook"


def test_kernels_leave_no_sockets_behind_and_shut_down_without_an_interrupt(tmp_path, monkeypatch, capfd):
    import asyncio

    monkeypatch.chdir(tmp_path)  # papermill runs kernels in the project root: nothing may land there

    async def start_and_stop():
        manager = run.ipc_kernel_manager()(kernel_name="python3")
        await manager.start_kernel()
        sockets = Path(manager.ip).parent
        assert sockets.is_dir() and sockets != tmp_path
        await manager.shutdown_kernel()  # at once, while the kernel may still be starting
        return sockets

    sockets = asyncio.run(start_and_stop())
    assert not sockets.exists(), "the sockets' directory goes with the kernel"
    assert list(tmp_path.iterdir()) == [], "no socket file in the working directory"
    assert "KeyboardInterrupt" not in capfd.readouterr().err, "the shutdown interrupts nothing"


def test_a_prose_change_re_executes_the_page_from_the_run_cache(toy, capsys):
    write_notebook(toy.notebooks / "a_ok.ipynb", "steps = 1", "\n".join([
        "from minima import runs",
        "from minima.experiments import table1",
        "task = table1.image_task('digits')",
        "specs = [table1.Table1Run(task, 8, 'a', 50, seed, lr=0.05, max_epochs=2, schedule_scale=1.0,",
        "                          hessian_subset=100, small=True, train_limit=100) for seed in (0, 1)]",
        "records = runs.run_all(specs)",
        "print('accuracies', [r.rows[0].test_accuracy for r in records])"]))
    executor = {"kind": "local", "workers": 2}
    assert run.run("fast", only=["a_ok"], project=toy, executor=executor) == 0
    log = toy.root / ".cache" / "runs" / "batches.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["executed"] == 2
    page = nbformat.read(toy.generated / "a_ok.ipynb", as_version=4)
    assert "local: 2 worker(s) x 1 torch thread(s)" in page.cells[-1].source  # the provenance box names it
    before = json.dumps(page.cells[-2].outputs)

    source = nbformat.read(toy.notebooks / "a_ok.ipynb", as_version=4)
    source.cells[0].source = "# A test page, reworded"
    nbformat.write(source, toy.notebooks / "a_ok.ipynb")
    capsys.readouterr()
    assert run.run("fast", only=["a_ok"], project=toy, executor=executor) == 0
    assert "a_ok ok" in capsys.readouterr().out, "the page was re-executed"
    last = json.loads(log.read_text().splitlines()[-1])
    assert (last["executed"], last["cached"]) == (0, 2), "its runs came from the cache"
    assert json.dumps(nbformat.read(toy.generated / "a_ok.ipynb", as_version=4).cells[-2].outputs) == before


@pytest.mark.parametrize("arguments, message", [
    (["--executor", "cluster"], "invalid choice: 'cluster'"),
    (["--workers", "-1"], "executor workers must be an integer >= 0, got -1"),
    (["--threads", "0"], "executor threads must be an integer >= 1, got 0"),
    (["--executor", "ray", "--address", "127.0.0.1:9"], "cannot reach the Ray cluster at 127.0.0.1:9"),
])
def test_cli_refuses_a_bad_executor_before_anything_runs(arguments, message):
    result = subprocess.run([sys.executable, "-m", "minima", "run", "--profile", "smoke", "--only", "00_data_overview",
                             *arguments], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "00_data_overview ..." not in result.stdout


def test_plan_prints_every_run_without_running_any(tmp_path):
    result = subprocess.run([sys.executable, "-m", "minima", "run", "--profile", "smoke", "--only", "40_table1",
                             "--plan"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "cpus 1" in line]
    # smoke: per task the small size (growing, a and the controls linear, static) and the large
    # (growing, a, b, c), 2 batches, 2 seeds; and MNIST's lambda grid (2 values; AG News' is given)
    assert len(lines) == 2 * (4 + 4) * 2 * 2 + 2 and "40_table1: 66 runs" in result.stdout
    assert sum("(choosing lambda)" in line for line in lines) == 2
    assert not (tmp_path / ".cache").exists(), "planning runs nothing"


def test_cli_refuses_unknown_profile():
    result = subprocess.run([sys.executable, "-m", "minima", "run", "--profile", "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown profile 'nope'; choose one of smoke, default, paper" in result.stderr


@pytest.mark.slow
def test_smoke_profile_builds_the_site_and_it_renders_offline(project_copy, real_data, monkeypatch, smoke_runs_cache):
    monkeypatch.setenv("MINIMA_DATA", str(real_data))
    monkeypatch.setenv("MINIMA_RUNS_CACHE", str(smoke_runs_cache))
    project = Project(project_copy)
    assert run.run("smoke", project=project) == 0
    index = book.build(project)
    html = project_copy / "_build" / "html"
    assert index.exists()
    pages = ["intro.html", "reproduction_notes.html", "generated/00_data_overview.html"]
    for page in pages:
        assert (html / page).exists(), page
    check_ledger(project_copy, html)
    overview = (html / "generated" / "00_data_overview.html").read_text()
    assert "Provenance of this page" in overview and "mnist-10k" in overview
    assert "https://cdn" not in overview
    # pages show results, not logs: no progress bar, warning or load report reached any page
    for page in sorted((html / "generated").glob("*.html")):
        text = page.read_text()
        for trace in ("it/s]", "s/it]", "%|", "TqdmWarning", "Warning:", "You should probably TRAIN"):
            assert trace not in text, f"{page.name} shows {trace!r}"

    reason = browser.available()
    if reason:
        pytest.skip(f"browser check not run: {reason}")
    report = browser.inspect_page(html / "generated" / "00_data_overview.html")
    assert report["plotly_svgs"] > 0, "no plotly figure drew"
    assert report["external"] == [], f"requests left the machine: {report['external']}"
    defects = browser.site_defects(html)
    assert defects == [], "\n".join(defects)


def flatter_headline_by_hand(results: pd.DataFrame) -> tuple[int, int, float]:
    """growing.flatter's headline recomputed without minima.claims: regularised protocol,
    elementwise, every scope pooled, twins a, b, c; per (scope, seed) cluster the mean log-ratio
    twin / grown over its pairs where both runs are certified, neither predicts one class only and
    the grown net did not collapse; (clusters, positive clusters, exact sign-test p)."""
    from scipy.stats import binom

    part = results[results.protocol == "regularised"]
    summaries = []
    for (task, hidden, seed), cluster in part.groupby(["task", "hidden", "seed"]):
        logs = []
        for _, twin in cluster[cluster.model.isin(["a", "b", "c"])].iterrows():
            grown = cluster[(cluster.model == "growing") & (cluster.batch == twin.batch)].iloc[0]
            yes = {str(v).lower() == "true" for v in (grown.constant, twin.constant, grown.collapsed)}
            if grown.verdict == "minimum" and twin.verdict == "minimum" and yes == {False}:
                logs.append(np.log(twin.elementwise / grown.elementwise))
        if logs and abs(np.mean(logs)) > 1e-12:
            summaries.append(np.mean(logs))
    n, k = len(summaries), int(sum(v > 0 for v in summaries))
    return n, k, (float(binom.sf(k - 1, n, 0.5)) if n else float("nan"))


def check_ledger(project_copy: Path, html: Path) -> None:
    """The smoke build's ledger: claims.csv with its columns, one row recomputed by hand from
    40_table1.csv, the ledger page and the landing page's short version."""
    results = project_copy / "book" / "generated" / "results"
    ledger = pd.read_csv(results / "claims.csv")
    assert list(ledger.columns[:len(claims.COLUMNS)]) == list(claims.COLUMNS)
    assert set(ledger.claim) == {c.id for c in claims.CLAIMS}, "every claim has a row"
    assert set(ledger.verdict) <= set(claims.VERDICTS)
    assert ledger.groupby("claim").headline.sum().eq(1).all(), "exactly one headline per claim"
    table1 = pd.read_csv(results / "40_table1.csv")
    row = ledger[(ledger.claim == "growing.flatter") & ledger.headline].iloc[0]
    n, k, p = flatter_headline_by_hand(table1)
    assert row.clusters >= n and (row.p_value == pytest.approx(p) or n == 0), (row.to_dict(), n, k, p)
    page = (html / "generated" / "90_claims.html").read_text()
    assert "minima-ledger" in page and "The papers" in page
    assert claims.SHORT_NAMES["growing.flatter"].replace("'", "&#8217;")[:20] in page or \
        claims.SHORT_NAMES["growing.flatter"][:20] in page
    assert "growing.flatter" not in page, "a reader sees claims by name, not by their ids"
    intro = (html / "intro.html").read_text()
    assert "has not been computed" not in intro and "minima-landing" in intro and "What differs from the papers" in intro


@pytest.mark.slow
def test_every_notebook_runs_without_any_data_files(project_copy, tmp_path, monkeypatch, capsys, smoke_runs_cache):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MINIMA_DATA", str(empty))
    monkeypatch.setenv("MINIMA_RUNS_CACHE", str(smoke_runs_cache))
    project = Project(project_copy)
    assert run.run("smoke", project=project) == 0
    out = capsys.readouterr().out
    sources = sorted(p.stem for p in project.notebooks.glob("*.ipynb"))
    assert all((project.generated / f"{name}.ipynb").exists() for name in sources)
    # CoLA has no embedded stand-in: Table 2 says what is missing; the others use digits
    assert "60_table2 skipped: data" in out, out
    page = "\n".join(c.source for c in nbformat.read(project.generated / "60_table2.ipynb", 4).cells)
    assert "This page was not computed" in page and f"{empty}/cola/train.tsv" in page
    overview = nbformat.read(project.generated / "00_data_overview.ipynb", 4)
    assert "missing" in json.dumps([c.get("outputs", []) for c in overview.cells])
