"""Hostile and careless input to the features added since test_hostile_input.py: own data formats and
label shapes, cross-validation, seeds, the Python API, export, compare, ensembles, loggers, user
config folders, trusted targets and launchers; and what a shared run directory may make us do.

Every case goes through a real command (run in this process: its exit code and output are what a
terminal shows) or the Python API. A case that must fail exits with code 2 (the API: raises a
textclass error), gives exactly one `error:` line naming the culprit, no traceback, and leaves every
file it was pointed at byte for byte as it was. A case that must succeed exits 0 and is checked by
its outcome.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers.cli import cli_env
from helpers.data import write_table, write_tiny_data, NEWS_ROWS
from helpers.answers import assert_answer
from helpers.files import digests
from helpers.inprocess import run_main
from textclass.errors import TextclassError

pytestmark = pytest.mark.slow

FAST = ["trainer.max_epochs=1", "logger=[]"]  # training cases: one epoch, no logger
OWN = ["data=files", "embeddings=none", "embeddings.dim=8", "data.vocab.min_freq=1", *FAST]  # own data, no vectors to load
RECORDS = [{"text": text, "label": label} for label, text in NEWS_ROWS]


@dataclass
class World:
    """Tiny news data, a finished run (read-only: copy it to change it), and the case's own folder."""

    data: Path
    run: Path
    case_dir: Path

    def copy_run(self, name: str = "run") -> Path:
        return Path(shutil.copytree(self.run, self.case_dir / name))


@dataclass
class Command:
    """A command line (["textclass-train", ...]) or a Python API call, and the files it must not change."""

    args: list[str] | Callable[[], object]
    guarded: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | bytes | None = None


@dataclass
class Outcome:
    result: subprocess.CompletedProcess
    value: object  # what an API call returned
    before: dict[str, str]
    after: dict[str, str]
    world: World


@dataclass
class Case:
    name: str
    prepare: Callable[[World], Command]
    fragments: tuple[str, ...] = ()  # the error line must hold each; empty for a case that succeeds
    check: Callable[[Outcome], None] | None = None


def call_api(fn: Callable[[], object]) -> tuple[subprocess.CompletedProcess, object]:
    """An API call as a command: a textclass error is its `error:` line and exit code 2."""
    try:
        value = fn()
    except TextclassError as err:
        return subprocess.CompletedProcess([], 2, "", f"error: {err}\n"), None
    except Exception:  # noqa: BLE001 - anything else is a bug: its traceback fails the case
        return subprocess.CompletedProcess([], 1, "", traceback.format_exc()), None
    return subprocess.CompletedProcess([], 0, repr(value), ""), value


def run_case(case: Case, world: World) -> Outcome:
    command = case.prepare(world)
    before = digests(command.guarded)
    if callable(command.args):
        cwd = os.getcwd()
        os.chdir(world.case_dir)
        try:
            result, value = call_api(command.args)
        finally:
            os.chdir(cwd)
    else:
        env = {**cli_env(world.data, world.case_dir), **command.env}
        result, value = run_main(command.args, world.case_dir, env, command.stdin), None
    return Outcome(result, value, before, digests(command.guarded), world)


# --- what cases do ------------------------------------------------------------------------------


def own_data(train: Callable[[Path], object], *overrides: str, valid: bool = True):
    """textclass-train on the user's files: `train(path_stem)` writes the train file and returns its path."""

    def prepare(w: World) -> Command:
        path = Path(train(w.case_dir / "train"))
        args = ["textclass-train", *OWN, f"data.dataset.train={path}", *overrides]
        if valid:
            args.append(f"data.dataset.valid={write_table(w.case_dir / 'valid.csv', RECORDS)}")
        return Command(args, guarded=[path])

    return prepare


def csv_lines(*lines: str) -> Callable[[Path], Path]:
    def write(stem: Path) -> Path:
        path = stem.with_suffix(".csv")
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    return write


def jsonl(records: list[object]) -> Callable[[Path], Path]:
    def write(stem: Path) -> Path:
        path = stem.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    return write


def parquet(text_values: list[object]) -> Callable[[Path], Path]:
    def write(stem: Path) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = stem.with_suffix(".parquet")
        pq.write_table(pa.table({"text": text_values, "label": [label for label, _ in NEWS_ROWS][: len(text_values)]}), path)
        return path

    return write


GOOD_CSV = [f'"{text}",{label}' for label, text in NEWS_ROWS]


def train(*overrides: str) -> Callable[[World], Command]:
    return lambda w: Command(["textclass-train", *FAST, *overrides], guarded=[w.data])


def on_run(program: str, change: Callable[[Path], None], *args: str, ckpt: bool = True) -> Callable[[World], Command]:
    """`program` on a copy of the finished run after `change(run)`; the copy is guarded."""

    def prepare(w: World) -> Command:
        run = w.copy_run()
        change(run)
        if program == "textclass-train":
            target = [f"resume={run}"]
        else:  # compare: the original run beside the changed copy
            target = [f"ckpt_path={run}"] if ckpt else [str(w.run)]
        return Command([program, *target, *(a.format(run=run, case=w.case_dir) for a in args)], guarded=[run])

    return prepare


def append_overrides(*overrides: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        path = run / ".hydra" / "overrides.yaml"
        path.write_text(yaml.safe_dump([*yaml.safe_load(path.read_text()), *(o.format(run=run) for o in overrides)]))

    return change


class Marker:
    """A pickle that touches `pwned` in the working directory when it is loaded: code a run ships."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def with_pickle(run: Path) -> None:
    (run / "vectors.kv").write_bytes(pickle.dumps(Marker()))
    append_overrides("embeddings=file", "embeddings.path={run}/vectors.kv", "embeddings.trust_pickle=true")(run)


def write_json(name: str, value: object) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text(json.dumps(value))


def swap_vocabulary(run: Path) -> None:
    record = json.loads((run / "vocab.json").read_text())
    words = record["itos"]
    words[2], words[3] = words[3], words[2]  # same size: only a check of its content can tell
    (run / "vocab.json").write_text(json.dumps(record))


def shorten_predictions(run: Path) -> None:
    path = run / "predictions_test.npz"
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["labels"] = arrays["labels"][:-1]
    np.savez_compressed(path, **arrays)


def api(fn: Callable[[World], Callable[[], object]], guarded: Callable[[World], list[Path]] = lambda w: []) -> Callable[[World], Command]:
    return lambda w: Command(fn(w), guarded=guarded(w))


def loaded(w: World):
    import textclass

    return textclass.load(w.run)


def user_config(name: str, text: str) -> Callable[[World], Command]:
    def prepare(w: World) -> Command:
        folder = w.case_dir / "conf" / "model"
        folder.mkdir(parents=True)
        (folder / f"{name}.yaml").write_text(text)
        return Command(["textclass-train", "--config-dir", str(w.case_dir / "conf"), f"model={name}", *FAST])

    return prepare


def in_a_file(name: str) -> Callable[[World], Path]:
    """A path whose folder is a regular file: no program can write there (not even root)."""

    def make(w: World) -> Path:
        (w.case_dir / "plain_file").write_text("a file, not a folder\n")
        return w.case_dir / "plain_file" / name

    return make


# --- checks of cases that succeed -----------------------------------------------------------------


def folder_of_mine(w: World) -> Path:
    """A folder of the user's that holds a labels.json of their own."""
    folder = w.case_dir / "mine"
    folder.mkdir()
    (folder / "labels.json").write_text('{"mine": true}\n')
    return folder


def empty_checkpoint(w: World) -> Path:
    path = w.case_dir / "empty.ckpt"
    path.write_bytes(b"")
    return path


def no_marker(outcome: Outcome) -> None:
    assert not (outcome.world.case_dir / "pwned").exists(), "a run directory's pickle ran"


def trained_on(examples: int) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        (run,) = (outcome.world.case_dir / "outputs" / "train" / "runs").iterdir()
        assert json.loads((run / "metrics.json").read_text())["train/examples"] == examples

    return check


def says(*fragments: str) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        output = outcome.result.stdout + outcome.result.stderr
        for fragment in fragments:
            assert fragment in output, fragment

    return check


def no_run_dir(outcome: Outcome) -> None:
    runs = outcome.world.case_dir / "outputs" / "train" / "runs"
    assert not runs.is_dir() or not any(runs.iterdir()), "a refused run left a run directory"


def both(*checks: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        for c in checks:
            c(outcome)

    return check


def empty_probabilities(outcome: Outcome) -> None:
    assert outcome.value.shape == (0, 4)


def one_prediction_of(text: str) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        (row,) = [json.loads(line) for line in outcome.result.stdout.splitlines()]
        assert row["text"] == text and row["label"] in ("business", "science/technology", "entertainment", "health")

    return check


UNCLOSED_QUOTE = ["text,label", GOOD_CSV[0], '"Stocks rally after earnings,b', *GOOD_CSV[1:], '"Apple unveils a phone\nwith a faster chip",t']
HIDDEN_LABELS = [{"text": text, "label": "-1"} for _, text in NEWS_ROWS]
CASE_TWINS = [{"text": text, "label": label.upper() if i % 3 == 0 else label} for i, (label, text) in enumerate(NEWS_ROWS * 2)]

CASES = [
    # a shared run directory may not make us run its code
    Case("resume_replays_a_pickle_it_ships", on_run("textclass-train", with_pickle, "trainer.max_epochs=5"),
         ("embeddings.trust_pickle=true", "only your own command line"), check=no_marker),
    # data lost or corrupted
    Case("export_over_its_own_checkpoint", on_run("textclass-export", lambda run: None, "output={run}/checkpoints/last.ckpt"),
         ("output=", "lies in the run directory")),
    Case("export_into_another_run", lambda w: Command(["textclass-export", f"ckpt_path={w.run}", f"output={w.copy_run('other')}/model.onnx"],
                                                      guarded=[w.case_dir / "other"]), ("lies in the run directory", "other")),
    Case("export_into_a_folder_of_other_files", lambda w: Command(["textclass-export", f"ckpt_path={w.run}", f"output={folder_of_mine(w)}/model.onnx"],
                                                                  guarded=[w.case_dir / "mine"]), ("labels.json", "would replace")),
    Case("resume_with_another_model", on_run("textclass-train", append_overrides("model=lstm"), "trainer.max_epochs=5"),
         ("does not fit the model", "RNNEncoder", "head.weight is [4, 50] in the checkpoint, [4, 128] in this model")),
    Case("csv_unclosed_quote_skipped", own_data(csv_lines(*UNCLOSED_QUOTE), "data.dataset.on_bad_row=skip"),
         check=both(trained_on(len(NEWS_ROWS) + 1), says("skipped 1 bad rows"))),
    Case("csv_unclosed_quote_named_where_it_opens", own_data(csv_lines(*UNCLOSED_QUOTE)), ("train.csv:3:", "quote opened on this line")),
    # bad input that trained anyway
    Case("json_object_as_text", own_data(jsonl([*RECORDS[:3], {"text": {"title": "Fed"}, "label": "b"}])), ("train.jsonl:4", "JSON object", "'text'")),
    Case("parquet_struct_as_text", own_data(parquet([{"title": t} for _, t in NEWS_ROWS])), ("row 1", "Parquet struct")),
    Case("parquet_binary_as_text", own_data(parquet([t.encode() for _, t in NEWS_ROWS])), ("row 1", "binary")),
    Case("json_object_as_label", own_data(jsonl([*RECORDS[:3], {"text": "Fed raises rates", "label": {"b": 1}}])), ("train.jsonl:4", "'label'", "not a label")),
    Case("csv_duplicate_header", own_data(csv_lines("text,label,text", *(f"{row},extra" for row in GOOD_CSV))), ("train.csv:1", "'text' 2 times")),
    Case("fold_without_folds", train("data.fold=2"), ("data.fold=2", "data.folds")),
    Case("plus_seeds_and_a_seed", train("+seeds=3", "seed=4"), ("seeds=3 and seed=4",)),
    Case("api_predict_none", api(lambda w: lambda: loaded(w).predict([None])), ("texts[0] is None", "not a string")),
    Case("api_predict_one_string", api(lambda w: lambda: loaded(w).predict("Stocks rally")), ("list of strings", "one str")),
    Case("api_predict_proba_of_nothing", api(lambda w: lambda: loaded(w).predict_proba([])), check=empty_probabilities),
    Case("api_train_seeds", api(lambda w: lambda: __import__("textclass").train(["seeds=2"])), ("seeds=2", "once per seed")),
    Case("thresholds_outside_0_1", on_run("textclass-eval", write_json("thresholds.json", dict.fromkeys(["business", "science/technology", "entertainment", "health"], 1.5))),
         ("thresholds.json", "1.5", "[0, 1]")),
    Case("thresholds_missing_a_label", on_run("textclass-eval", write_json("thresholds.json", {"business": 0.5})), ("thresholds.json", "'science/technology'")),
    Case("tampered_vocabulary_exported", on_run("textclass-export", swap_vocabulary), ("vocab.json", "not the vocabulary")),
    Case("wandb_folder_not_writable", lambda w: Command(["textclass-train", *FAST, "logger=wandb", f"logger.wandb.save_dir={in_a_file('wandb')(w)}"],
                                                        env={"WANDB_MODE": "offline"}), ("logger.wandb.save_dir", "cannot write")),
    Case("csv_logger_folder_not_writable", lambda w: Command(["textclass-train", *FAST[:1], "logger=csv", f"logger.csv.save_dir={in_a_file('csv')(w)}"]),
         ("logger.csv.save_dir", "cannot write"), check=no_run_dir),
    Case("labels_that_differ_by_case", own_data(lambda stem: write_table(stem.with_suffix(".csv"), CASE_TWINS), valid=False,
                                                *["data.dataset.split_fractions=[0.75,0.25]"]), check=says("differ only by case")),
    # tracebacks before
    Case("zero_byte_checkpoint", lambda w: Command(["textclass-predict", f"ckpt_path={empty_checkpoint(w)}", "text=hi"]), ("empty.ckpt", "the file is empty")),
    Case("export_into_an_unwritable_folder", lambda w: Command(["textclass-export", f"ckpt_path={w.run}", f"output={in_a_file('model.onnx')(w)}"]),
         ("output=", "cannot create the folder", "plain_file is a file")),
    Case("compare_predictions_of_other_lengths", on_run("textclass-compare", shorten_predictions, "{run}", "output={case}/out", ckpt=False),
         ("predictions_test.npz", "different lengths")),
    Case("split_fractions_a_number", own_data(lambda stem: write_table(stem.with_suffix(".csv"), RECORDS * 3), "data.dataset.split_fractions=0.8", valid=False),
         ("split_fractions=0.8", "list of 2 or 3 fractions")),
    Case("empty_label_separator", own_data(lambda stem: write_table(stem.with_suffix(".csv"), RECORDS), "data.dataset.multi_label=true", "data.dataset.label_separator=''"),
         ("label_separator=''",)),
    Case("user_config_invalid_yaml", user_config("broken", "encoder: [unclosed\n"), ("broken.yaml:2", "not valid YAML")),
    Case("user_config_a_list", user_config("listed", "- a\n- b\n"), ("listed.yaml", "model=listed holds a list")),
    Case("slurm_installed_without_a_cluster", lambda w: Command(["textclass-train", "-m", "hydra/launcher=slurm", "trainer=ddp_cpu", "trainer.devices=1",
                                                                 "optimizer.lr=0.01,0.02"], env={"SLURM_CONF": str(w.case_dir / "none.conf")})
         if shutil.which("srun") else pytest.skip("Slurm's client programs are not installed here"), ("hydra/launcher=slurm", "no cluster answers")),
    # misleading messages before
    Case("hidden_test_labels", own_data(lambda stem: write_table(stem.parent / "hidden.csv", HIDDEN_LABELS) and write_table(stem.with_suffix(".csv"), RECORDS * 2),
                                        "data.dataset.test=hidden.csv"), ("hidden.csv", "data.dataset.test=null")),
    Case("split_fractions_leave_valid_empty", own_data(lambda stem: write_table(stem.with_suffix(".csv"), RECORDS[:4]), "data.dataset.split_fractions=[0.9,0.1]", valid=False),
         ("split_fractions=[0.9, 0.1]", "valid split", "empty")),
    # news: 8 examples each of science/technology and health in train+valid
    Case("folds_name_the_rare_class", train("data.folds=9"), ("data.folds=9", "the class 'science/technology' has only 8 examples")),
    Case("compare_says_which_key_turns_predictions_off", on_run("textclass-compare", lambda run: (run / "predictions_valid.npz").unlink(),
                                                                "{run}", "split=valid", "output={case}/out", ckpt=False), ("or with predictions=false",)),
    Case("stdlib_target_advice", train("model.encoder._target_=os.system"), ("os.system", "standard library")),
    Case("predict_text_with_a_comma", lambda w: Command(["textclass-predict", f"ckpt_path={w.run}", "text=Stocks fall, bonds rally"]),
         check=one_prediction_of("Stocks fall, bonds rally")),
    # the features of this round: a run's checkpoints and hardware
    Case("checkpoint_that_is_not_there", lambda w: Command(["textclass-eval", f"ckpt_path={w.run}", "checkpoint=epoch_009.ckpt"]),
         ("checkpoint=epoch_009.ckpt", "last.ckpt, selected.ckpt")),
    Case("checkpoint_choice_for_a_file", lambda w: Command(["textclass-predict", f"ckpt_path={w.run / 'checkpoints' / 'last.ckpt'}", "checkpoint=last", "text=hi"]),
         ("is a checkpoint file already", "pass the run directory")),
    Case("gpu_trainer_without_a_gpu", train("trainer=gpu"), ("trainer.accelerator=gpu", "trainer=cpu"), check=no_run_dir),
    Case("more_gpus_than_there_are", train("trainer.accelerator=cuda", "trainer.devices=[0,1]"), ("trainer.accelerator=cuda", "no GPU")),
    Case("a_strategy_lightning_refuses", train("+trainer.strategy=nonsense"), ("trainer:", "strategy='nonsense'"), check=no_run_dir),
    Case("validation_every_zero_epochs", train("trainer.check_val_every_n_epoch=0"), ("trainer.check_val_every_n_epoch=0", "1 or more")),
    Case("bad_override_caught_in_the_job_leaves_no_run_dir", train("data.dataset.text_column=headline"), ("'headline'",), check=no_run_dir),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("hostile_features")
    data = write_tiny_data(root / "data", sst2=False)
    result = run_main(["textclass-train", "trainer.max_epochs=2", "data.batch_size=4", "logger=[]", "hydra.run.dir=run"], root, cli_env(data, root))
    assert result.returncode == 0, result.stderr[-3000:]
    return World(data, root / "run", root)


@pytest.fixture(scope="module")
def outcomes(world, tmp_path_factory) -> dict[str, Outcome | str]:
    """Every case, one after another, each in a folder of its own; a case that cannot run here: why."""
    found: dict[str, Outcome | str] = {}
    for case in CASES:
        try:
            found[case.name] = run_case(case, World(world.data, world.run, tmp_path_factory.mktemp(case.name)))
        except pytest.skip.Exception as skipped:
            found[case.name] = str(skipped)
    return found


def test_the_table_is_big_enough():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, outcomes):
    outcome = outcomes[case.name]
    if isinstance(outcome, str):
        pytest.skip(outcome)
    assert_answer(outcome.result, case.fragments)
    assert outcome.after == outcome.before, "a guarded file changed or vanished"
    if case.check is not None:
        case.check(outcome)


def test_two_predicts_into_one_output_never_mix(world, tmp_path):
    """Each write has a temporary file of its own: a second predict writing the same output while the
    first is half way through leaves the first's whole file, not a mix (the second's rows came first)."""
    from textclass.training.inference import Prediction
    from textclass.commands.predict import write

    output = tmp_path / "out.jsonl"

    def rows(texts: list[str], inner: bool):
        for i, text in enumerate(texts):
            if i == 1 and inner:  # half way: another predict writes the same file, start to end
                write(rows(["other one", "other two"], inner=False), str(output), None, ["b"])
            yield Prediction(text, "b", {"b": 1.0})

    write(rows(["first", "second", "third"], inner=True), str(output), None, ["b"])
    assert [json.loads(line)["text"] for line in output.read_text().splitlines()] == ["first", "second", "third"]
    assert not list(tmp_path.glob(".*.tmp"))
