"""Every NLP100 recipe once, on a split that selected nothing: the figure and run time the tutorials quote.

    python -m benchmarks.nlp100 [--recipes nlp100_2020/73,...] [--seed 1] [--quick] [--data-dir DIR] [--out PATH]
    python -m benchmarks.nlp100 --fill-docs [--out PATH]   # the figures of PATH into the tutorials and notebooks

Each recipe (`experiment=nlp100_<edition>/<problem>`) trains once with `data.holdout=0.1`: a tenth
of train, stratified, selects the epoch, and the dataset's valid file (news valid.tsv, SST-2
dev.tsv) reports as the test split, which nothing was chosen on. A row per recipe: its test
accuracy and the wall time of the whole command on this machine. --quick trains each on the first
200 examples of each split for one epoch (the script's own test).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._common import RESULTS_DIR, Row, default_data_dir, require_data, row, write_results
from benchmarks.accuracy import prepare_work_dir, run_sweep, sweep_env, train_command

RECIPES = (
    "nlp100_2020/73", "nlp100_2020/77", "nlp100_2020/79", "nlp100_2020/82", "nlp100_2020/83", "nlp100_2020/84",
    "nlp100_2020/85", "nlp100_2020/87", "nlp100_2020/88", "nlp100_2020/89",
    "nlp100_2025/74", "nlp100_2025/76", "nlp100_2025/78", "nlp100_2025/79",
)
QUICK = ("data.max_examples=200", "trainer.max_epochs=1")
REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "docs" / "tutorials"
NOTEBOOKS = REPO / "notebooks"
# a tutorial's table row: | problem | `recipe` | test accuracy | time | published |
TABLE_ROW = re.compile(r"^(\| [^|]+ \| `(?P<recipe>nlp100_\d{4}/\d+)` \| )[^|]+ \| [^|]+ (\|.*)$", re.M)
# a notebook's sentence under a recipe's cell
NOTEBOOK_FIGURE = re.compile(r"(Full run of `experiment=(?P<recipe>nlp100_\d{4}/\d+) data\.holdout=0\.1` [^:]*: )(.*?)(?=\. Published figure)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated experiment names")
    parser.add_argument("--seed", type=int, default=42, help="the config's default seed, as the notebooks train")
    parser.add_argument("--quick", action="store_true", help="200 examples a split, one epoch (a smoke test)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "nlp100.json")
    parser.add_argument("--fill-docs", action="store_true", help="write --out's figures into the tutorials' tables and the notebooks; train nothing")
    args = parser.parse_args(argv)
    unknown = [r for r in args.recipes.split(",") if r not in RECIPES]
    if unknown:
        parser.error(f"--recipes: {', '.join(unknown)} not among {', '.join(RECIPES)}")
    return args


def run_recipe(recipe: str, work: Path, data_dir: Path, seed: int, quick: bool) -> list[Row]:
    """One training of `recipe`; its rows (test accuracy, selection-split accuracy, seconds, epochs)."""
    name = recipe.replace("/", "_")
    command = [*train_command(), f"experiment={recipe}", "data.holdout=0.1", f"seed={seed}", "logger=[]",
               "trainer.enable_progress_bar=false", f"hydra.run.dir={name}", *(QUICK if quick else ())]
    start = time.perf_counter()
    status = run_sweep(command, work, sweep_env(data_dir), quiet=True, log_name=f"{name}.log")
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{recipe} failed (exit {status}); see {work / f'{name}.log'}")
    metrics = json.loads((work / name / "metrics.json").read_text())
    print(f"{recipe:16s} test acc {metrics['test/acc']:.4f}  (selection {metrics['val/acc_selected']:.4f})  {seconds:7.1f} s", flush=True)
    return [
        row(f"{recipe} test/acc", metrics["test/acc"], "accuracy"),
        row(f"{recipe} val/acc_selected", metrics["val/acc_selected"], "accuracy"),
        row(f"{recipe} wall", round(seconds, 1), "s"),
    ]


def measured(results: dict) -> dict[str, tuple[float, float]]:
    """recipe -> (test accuracy, seconds) of a results file written by a full (not --quick) run."""
    if results["metadata"].get("quick"):
        raise SystemExit("--fill-docs: the results file holds a --quick run, whose figures are no recipe's")
    values = {r["name"]: r["value"] for r in results["rows"]}
    return {r: (values[f"{r} test/acc"], values[f"{r} wall"]) for r in RECIPES if f"{r} test/acc" in values}


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def fill(pattern: re.Pattern, text: str, figures: dict[str, tuple[float, float]], render: Callable[[re.Match, str, str], str]) -> str:
    """Each match of `pattern` whose recipe was measured, rendered from (the match, its accuracy, its time)."""
    def replace(m: re.Match) -> str:
        if m["recipe"] not in figures:
            return m[0]
        acc, seconds = figures[m["recipe"]]
        return render(m, f"{acc:.3f}", duration(seconds))
    return pattern.sub(replace, text)


def fill_table(text: str, figures: dict[str, tuple[float, float]]) -> str:
    return fill(TABLE_ROW, text, figures, lambda m, acc, took: f"{m[1]}{acc} | {took} {m[3]}")


def fill_sentence(text: str, figures: dict[str, tuple[float, float]]) -> str:
    return fill(NOTEBOOK_FIGURE, text, figures, lambda m, acc, took: f"{m[1]}test accuracy {acc}, {took} on a 2-core CPU")


def fill_docs(figures: dict[str, tuple[float, float]]) -> list[Path]:
    """The measured figures into the tutorials' tables and the notebooks' markdown; the files changed."""
    changed = []
    for page in sorted(TUTORIALS.glob("nlp100-*.md")):
        text = page.read_text()
        if (new := fill_table(text, figures)) != text:
            page.write_text(new)
            changed.append(page)
    for path in sorted(NOTEBOOKS.glob("nlp100_*.ipynb")):
        notebook = json.loads(path.read_text())
        before = json.dumps(notebook)
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                cell["source"] = fill_sentence("".join(cell["source"]), figures).splitlines(keepends=True)
        if json.dumps(notebook) != before:
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.fill_docs:
        for path in fill_docs(measured(json.loads(args.out.read_text()))):
            print(f"filled {path.relative_to(REPO)}")
        return
    require_data(args.data_dir, ["news/train.tsv", "news/valid.tsv", "sst2/train.tsv", "sst2/dev.tsv"])
    work, _ = prepare_work_dir(args.work_dir, "nlp100")
    rows: list[Row] = []
    for recipe in args.recipes.split(","):
        rows += run_recipe(recipe, work, args.data_dir, args.seed, args.quick)
    command = " ".join(["python -m benchmarks.nlp100", *(sys.argv[1:] if argv is None else argv)])
    write_results(args.out, {"seed": args.seed, "quick": args.quick, "holdout": 0.1, "command": command}, rows)


if __name__ == "__main__":
    main()
