"""The NLP100 notebooks: committed without outputs, and each runs top to bottom on the real data
(the first 300 examples of each split, one epoch: NLP100_QUICK=1), so a notebook cannot rot.
A failing cell is named by its notebook, number and first line."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.paths import REAL_DATA, REPO, real_data

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((REPO / "notebooks").glob("nlp100_*.ipynb"))


def test_there_is_a_notebook_per_chapter():
    assert [p.stem for p in NOTEBOOKS] == ["nlp100_2020_ch8", "nlp100_2020_ch9", "nlp100_2025_ch8"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_every_problem_in_order(path: Path):
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    problems = [int(c.source.split(".")[0].removeprefix("## ").split("-")[0]) for c in book.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    first = 80 if "ch9" in path.stem else 70
    assert problems == sorted(problems) and problems[0] == first and problems[-1] == first + 9


@real_data
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_on_the_real_data(path: Path, tmp_path, monkeypatch):
    monkeypatch.setenv("NLP100_QUICK", "1")
    monkeypatch.setenv("TEXTCLASS_DATA_DIR", str(REAL_DATA))
    monkeypatch.setenv("TEXTCLASS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=600, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for number, cell in enumerate(book.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                first_line = cell.source.splitlines()[0]
                pytest.fail(f"{path.relative_to(REPO)}, cell {number} ({first_line!r}): {output.ename}: {output.evalue}")
    printed = "".join(o.get("text", "") for c in book.cells if c.cell_type == "code" for o in c.outputs)
    assert printed.count("test accuracy") == sum("test accuracy" in c.source for c in book.cells if c.cell_type == "code")
    assert "Traceback" not in printed
