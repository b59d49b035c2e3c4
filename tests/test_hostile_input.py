"""Hostile and careless input through the real CLIs: every case ends as a user would want.

A case that must fail exits with code 2, prints exactly one `error:` line naming the culprit (file,
line, key or value) and no traceback, and leaves every file it was pointed at as it was. A case
that must succeed exits 0 and its output answers its input row for row. The faults (SIGKILL mid-
epoch and mid-cache-build, two runs in the same second, a full disk) come after the table.

The table's cases run in this process through each command's entry point (helpers/inprocess.py: the
exit code and lines a terminal would show, without 8 s of imports per case), each in its own folder,
in one fixture; a test per case checks it. The faults need real processes and start them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from helpers.answers import assert_answer, error_lines
from helpers.files import digests
from helpers.inprocess import run_main
from helpers.cli import cli_env, run_cli, run_ok
from helpers.data import write_tiny_data, write_tsv, NEWS_ROWS

pytestmark = pytest.mark.slow

TRAIN_FAST = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=[]"]


@dataclass
class World:
    """What a case may use: tiny data, a finished run (read-only: copy it to change it), its own folder."""

    data: Path
    run: Path
    case_dir: Path

    @property
    def ckpt(self) -> str:
        return f"ckpt_path={self.run}/checkpoints/last.ckpt"

    def copy_data(self) -> Path:
        return Path(shutil.copytree(self.data, self.case_dir / "data"))

    def copy_run(self) -> Path:
        return Path(shutil.copytree(self.run, self.case_dir / "run"))


@dataclass
class Outcome:
    result: subprocess.CompletedProcess
    before: dict[str, str]  # the guarded files' digests before the command
    after: dict[str, str]
    world: World


@dataclass
class Case:
    """One command: `prepare(world)` writes its files and returns (argv, env overrides, stdin, guarded paths)."""

    name: str
    prepare: Callable[[World], tuple[list[str], dict[str, str], str | bytes | None, list[Path]]]
    fragments: tuple[str, ...] = ()  # the error line must hold each; empty for a case that succeeds
    check: Callable[[Outcome], None] | None = None  # further checks (output rows, files)


def run_case(case: Case, world: World) -> Outcome:
    args, env, stdin, guarded = case.prepare(world)
    before = digests(guarded)
    result = run_main(args, cwd=world.case_dir, env={**cli_env(world.data, world.case_dir), **env}, stdin=stdin)
    return Outcome(result, before, digests(guarded), world)


# --- case helpers ------------------------------------------------------------------------------


def train(*overrides: str, env: dict[str, str] | None = None):
    return lambda w: (["textclass-train", *TRAIN_FAST, *overrides], env or {}, None, [w.data])


def with_train_file(content: bytes | None = None, make: Callable[[Path], None] | None = None, *overrides: str):
    """textclass-train on a copy of the data whose news/train.tsv is `content`, or what `make` leaves."""

    def prepare(w: World):
        data = w.copy_data()
        path = data / "news" / "train.tsv"
        path.unlink()
        if make is not None:
            make(path)
        else:
            path.write_bytes(content)
        return ["textclass-train", *TRAIN_FAST, *overrides], {"TEXTCLASS_DATA_DIR": str(data)}, None, [data / "news" / "valid.tsv"]

    return prepare


def on_run(cli: str, change: Callable[[Path], None], *args: str):
    """`cli` on a copy of the finished run after `change(run_dir)`; the copy is guarded."""

    def prepare(w: World):
        run = w.copy_run()
        change(run)
        ckpt = [f"ckpt_path={run}/checkpoints/last.ckpt"] if cli != "textclass-train" else []
        resume = [f"resume={run}"] if cli == "textclass-train" else []
        return [cli, *ckpt, *resume, *args], {}, None, [run]

    return prepare


def predict(*args: str, stdin: str | bytes | None = None, files: dict[str, bytes] | None = None):
    def prepare(w: World):
        for name, content in (files or {}).items():
            (w.case_dir / name).write_bytes(content)
        guarded = [w.case_dir / name for name in files or {}]
        return ["textclass-predict", w.ckpt, *args], {}, stdin, guarded

    return prepare


def edit_yaml(name: str, text: str) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text(text)


def append_override(override: str) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        path = run / ".hydra" / "overrides.yaml"
        path.write_text(yaml.safe_dump([*yaml.safe_load(path.read_text()), override]))

    return change


def replace_checkpoint(content: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        ckpt = run / "checkpoints" / "last.ckpt"
        ckpt.write_bytes(content(ckpt.read_bytes()))

    return change


def json_rows(outcome: Outcome) -> list[dict]:
    return [json.loads(line) for line in outcome.result.stdout.splitlines()]


def rows_answer_lines(expected_texts: list[str]) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        rows = json_rows(outcome)
        assert [r["text"] for r in rows] == expected_texts
        for row, text in zip(rows, expected_texts):
            assert (row["label"] is None) == (text == ""), row
            assert (row.get("skipped") == "empty line") == (text == "")

    return check


def tsv_round_trip(outcome: Outcome) -> None:
    rows = list(csv.reader(io.StringIO((outcome.world.case_dir / "out.tsv").read_text()), delimiter="\t"))
    assert [r[0] for r in rows] == ["text", "Apple\tunveils \"new\" iPhone", "", "Stocks rally"]
    assert all(len(r) == 6 for r in rows)
    assert rows[2][1:] == [""] * 5  # the empty line: no label, no probabilities


def no_marker(outcome: Outcome) -> None:
    assert not (outcome.world.case_dir / "pwned").exists(), "a run directory's config ran code"


def gensim_vectors(*overrides: str):
    """textclass-train on a gensim KeyedVectors file (a pickle) of the tiny data's words."""

    def prepare(w: World):
        from gensim.models import KeyedVectors

        words = sorted({t.lower().strip(",") for _, title in NEWS_ROWS for t in title.split()})
        kv = KeyedVectors(vector_size=8)
        kv.add_vectors(words, torch.randn(len(words), 8).numpy())
        path = w.case_dir / "vectors.kv"
        kv.save(str(path))
        return ["textclass-train", *TRAIN_FAST, "embeddings=file", f"embeddings.path={path}", *overrides], {}, None, [path]

    return prepare


def says_nothing_to_do(outcome: Outcome) -> None:
    assert "nothing to do, the run is finished (it trained 2 of trainer.max_epochs=2 epochs)" in outcome.result.stderr
    assert "trainer.max_epochs=<more epochs>" in outcome.result.stderr


def user_dataset_run(trusted: bool):
    """textclass-eval of a run whose dataset class comes from the user's own package `mydata`
    (importing it leaves a marker file): built only when TEXTCLASS_TRUSTED_MODULES names it."""

    def prepare(w: World):
        package = w.case_dir / "mydata"
        package.mkdir()
        (package / "__init__.py").write_text(
            "from pathlib import Path\nfrom textclass.data.dataset import TextDataset\n"
            "Path('pwned').touch()\n\nclass MyNews(TextDataset):\n    pass\n"
        )
        run = w.copy_run()
        config = run / "config.yaml"
        config.write_text(config.read_text().replace("textclass.data.dataset.TextDataset", "mydata.MyNews"))
        env = {"PYTHONPATH": str(w.case_dir), **({"TEXTCLASS_TRUSTED_MODULES": "mydata"} if trusted else {})}
        return ["textclass-eval", f"ckpt_path={run}/checkpoints/last.ckpt", "splits=[valid]"], env, None, [run]

    return prepare


def skipped_bad_utf8(outcome: Outcome) -> None:
    log = outcome.result.stdout + outcome.result.stderr  # Hydra's console log goes to stdout
    assert "skipped 1 bad rows" in log and "1 bad UTF-8" in log


def typo_dir_not_created(outcome: Outcome) -> None:
    assert not (outcome.world.case_dir / "typo").exists()


def unreadable_file(path: Path) -> None:
    """A file whose read fails: mode 000 (as root, which reads anything, a link to /proc/self/mem, whose
    read at offset 0 fails with EIO)."""
    if os.geteuid() == 0:
        path.symlink_to("/proc/self/mem")
    else:
        path.write_text("category\ttitle\n")
        path.chmod(0)


def symlink_loop(path: Path) -> None:
    other = path.with_name("loop.tsv")
    path.symlink_to(other)
    other.symlink_to(path)


GOOD_NEWS = "category\ttitle\n" + "".join(f"{label}\t{text}\n" for label, text in NEWS_ROWS * 3)
BAD_UTF8_ROW = GOOD_NEWS.encode() + b"b\tStocks \xff rally\n"
EVIL_TARGET = "{_target_: posix.system, command: touch pwned}"

CASES = [
    # config values
    Case("max_epochs_not_a_number", train("trainer.max_epochs=abc"), ("trainer.max_epochs='abc'", "int")),
    Case("max_epochs_zero", train("trainer.max_epochs=0"), ("trainer.max_epochs=0", "1 or more")),
    Case("max_epochs_negative", train("trainer.max_epochs=-3"), ("trainer.max_epochs=-3",)),
    Case("embeddings_file_without_path", train("embeddings=file"), ("embeddings.path",)),
    Case("unknown_group_option", train("data=nope"), ("data/nope", "news, sst2")),
    Case("override_syntax", train("trainer.max_epochs=["), ("trainer.max_epochs=[",)),
    Case("unknown_key", train("foo=1"), ("foo", "+foo=1")),
    Case("float_for_int", train("model=lstm", "model.encoder.hidden_size=1.5"), ("model.encoder.hidden_size=1.5", "int")),
    Case("batch_size_zero", train("data.batch_size=0"), ("data.batch_size=0",)),
    Case("batch_size_text", train("data.batch_size=big"), ("data.batch_size='big'",)),
    Case("precision_typo", train("trainer.precision=bf17"), ("trainer.precision='bf17'", "bf16-mixed")),
    Case("negative_lr", train("optimizer.lr=-1"), ("lr",)),
    Case("option_of_another_encoder", train("+model.encoder.bidirectional=true"), ("model.encoder.bidirectional",)),
    Case("bert_with_word_tokens", train("model=bert", "tokenizer=word"), ("tokenizer",)),
    Case("bad_row_policy", train("data.dataset.on_bad_row=maybe"), ("on_bad_row='maybe'",)),
    Case("missing_embeddings_file", train("embeddings=file", "embeddings.path=/nonexistent/vectors.txt"), ("/nonexistent/vectors.txt",)),
    Case("bad_interpolation", train("data.batch_size=${nowhere}"), ("data.batch_size", "nowhere")),
    Case("gensim_pickle_without_opt_in", gensim_vectors(), ("vectors.kv", "pickle", "embeddings.trust_pickle=true")),
    Case("gensim_pickle_with_opt_in", gensim_vectors("embeddings.trust_pickle=true")),
    Case("eval_without_ckpt", lambda w: (["textclass-eval"], {}, None, []), ("ckpt_path",)),
    Case("predict_without_ckpt", lambda w: (["textclass-predict", "text=hi"], {}, None, []), ("ckpt_path",)),
    # data files
    Case("train_file_is_a_directory", with_train_file(make=lambda p: p.mkdir()), ("train.tsv", "is a directory")),
    Case("train_file_symlink_loop", with_train_file(make=symlink_loop), ("train.tsv", "link")),
    Case("train_file_dangling_link", with_train_file(make=lambda p: p.symlink_to(p.with_name("gone.tsv"))), ("train.tsv", "leads nowhere")),
    Case("train_file_unreadable", with_train_file(make=unreadable_file), ("cannot read data file", "train.tsv")),
    Case("train_file_empty", with_train_file(b""), ("train.tsv:1", "header")),
    Case("train_file_header_only", with_train_file(b"category\ttitle\n"), ("train.tsv", "no usable rows")),
    Case("train_file_wrong_header", with_train_file(GOOD_NEWS.replace("category\ttitle", "label\ttext").encode()), ("train.tsv:1", "header")),
    Case("train_file_extra_field", with_train_file(GOOD_NEWS.encode() + b"b\tStocks\textra\n"), ("train.tsv:32", "3 fields instead of 2")),
    Case("train_file_bad_utf8", with_train_file(BAD_UTF8_ROW), ("train.tsv:32", "UTF-8")),
    Case("train_file_bad_utf8_skipped", with_train_file(BAD_UTF8_ROW, None, "data.dataset.on_bad_row=skip"), check=skipped_bad_utf8),
    Case("train_file_with_bom", with_train_file(b"\xef\xbb\xbf" + GOOD_NEWS.encode())),
    Case("train_file_crlf", with_train_file(GOOD_NEWS.replace("\n", "\r\n").encode())),
    Case(
        "mistyped_data_dir",
        lambda w: (["textclass-train", *TRAIN_FAST], {"TEXTCLASS_DATA_DIR": str(w.case_dir / "typo")}, None, []),
        ("typo",),
        check=typo_dir_not_created,
    ),
    # checkpoints and run directories
    Case("ckpt_random_bytes", on_run("textclass-eval", replace_checkpoint(lambda b: os.urandom(4096))), ("cannot read checkpoint", "last.ckpt")),
    Case("ckpt_truncated", on_run("textclass-eval", replace_checkpoint(lambda b: b[: len(b) // 2])), ("cannot read checkpoint", "truncated")),
    Case("ckpt_missing", lambda w: (["textclass-eval", f"ckpt_path={w.case_dir}/none.ckpt"], {}, None, []), ("checkpoint not found", "none.ckpt")),
    Case("ckpt_without_run_dir", lambda w: (["textclass-eval", f"ckpt_path={shutil.copy(w.run / 'checkpoints' / 'last.ckpt', w.case_dir)}"], {}, None, []), ("config.yaml",)),
    Case("run_config_invalid_yaml", on_run("textclass-eval", edit_yaml("config.yaml", "data: [unclosed\n  model: {\n")), ("config.yaml", "not valid YAML")),
    Case("run_config_not_a_mapping", on_run("textclass-predict", edit_yaml("config.yaml", "- just\n- a list\n"), "text=hi"), ("config.yaml", "not a textclass-train run config")),
    Case(
        "run_config_runs_code",
        on_run("textclass-eval", lambda run: (run / "config.yaml").write_text((run / "config.yaml").read_text().replace(
            "_target_: textclass.data.dataset.TextDataset", "_target_: posix.system\n    command: touch pwned\n    _args_: []\n    root_: x"))),
        ("_target_='posix.system'", "TEXTCLASS_TRUSTED_MODULES"),
        check=no_marker,
    ),
    Case(
        "run_config_walks_out_of_a_trusted_package",
        on_run("textclass-predict", lambda run: (run / "config.yaml").write_text((run / "config.yaml").read_text().replace(
            "_target_: textclass.tokenizers.word.WordTokenizer", "_target_: textclass.commands.cli.sys.exit")), "text=hi"),
        ("_target_='textclass.commands.cli.sys.exit'",),
    ),
    Case("resume_override_runs_code", on_run("textclass-train", append_override(f"+callbacks.evil={EVIL_TARGET}"), "trainer.max_epochs=5"), ("posix.system",), check=no_marker),
    Case("resume_override_changes_hydra", on_run("textclass-train", append_override("hydra.searchpath=[file:///tmp]"), "trainer.max_epochs=5"), ("hydra.searchpath",)),
    Case("resume_finished_run", on_run("textclass-train", lambda run: None), check=says_nothing_to_do),
    Case("trusted_user_package", user_dataset_run(trusted=True)),
    Case("untrusted_user_package", user_dataset_run(trusted=False), ("mydata.MyNews", "TEXTCLASS_TRUSTED_MODULES=mydata"), check=no_marker),
    Case("resume_not_a_run", lambda w: (["textclass-train", f"resume={w.case_dir}"], {}, None, []), ("is not a textclass-train run",)),
    Case("resume_overrides_not_a_list", on_run("textclass-train", edit_yaml(".hydra/overrides.yaml", "key: value\n"), "trainer.max_epochs=5"), ("overrides.yaml", "not a list")),
    Case("eval_missing_file", lambda w: (["textclass-eval", w.ckpt, f"file={w.case_dir}/more.tsv"], {}, None, []), ("more.tsv", "does not exist")),
    Case("eval_unknown_split", lambda w: (["textclass-eval", w.ckpt, "splits=[nope]"], {}, None, []), ("splits=['nope']",)),
    # predict input and output
    Case("predict_output_folder_missing", predict("text=hi", "output=missing/preds.tsv"), ("missing", "does not exist")),
    Case("predict_output_is_a_directory", predict("text=hi", "output=."), ("is a directory",)),
    Case("predict_output_is_the_input", predict("input=in.txt", "output=in.txt", files={"in.txt": b"Fed raises rates\n"}), ("is the input file",)),
    Case("predict_input_not_utf8", predict("input=in.txt", files={"in.txt": b"Fed raises rates\nStocks \xff rally\n"}), ("in.txt:2", "UTF-8")),
    Case("predict_stdin_not_utf8", predict(stdin=b"Fed raises rates\nStocks \xff rally\n"), ("<stdin>:2", "UTF-8")),
    Case("predict_input_is_a_directory", predict("input=."), ("input=.", "not a file")),
    Case("predict_input_only_blank", predict(stdin="\n  \n\n"), ("nothing to predict",)),
    Case("predict_blank_line_keeps_alignment", predict(stdin="Fed raises rates\n\nStocks rally\n"), check=rows_answer_lines(["Fed raises rates", "", "Stocks rally"])),
    Case("predict_tsv_quotes_tabs", predict("input=in.txt", "output=out.tsv", files={"in.txt": 'Apple\tunveils "new" iPhone\n\nStocks rally\n'.encode()}), check=tsv_round_trip),
    Case("predict_bom_input", predict("input=in.txt", files={"in.txt": b"\xef\xbb\xbfFed raises rates\n"}), check=rows_answer_lines(["Fed raises rates"])),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("hostile")
    data = write_tiny_data(root / "data", sst2=False, news_test=False)
    trained = run_main(["textclass-train", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"], cwd=root, env=cli_env(data, root))
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run,) = (root / "outputs" / "train" / "runs").iterdir()
    return World(data, run, root)


@pytest.fixture(scope="module")
def outcomes(world, tmp_path_factory) -> dict[str, Outcome]:
    """Every case of the table, one after another, each in a folder of its own."""
    return {case.name: run_case(case, World(world.data, world.run, tmp_path_factory.mktemp(case.name))) for case in CASES}


def test_the_table_is_big_enough():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, outcomes):
    outcome = outcomes[case.name]
    result = outcome.result
    assert_answer(result, case.fragments)
    assert "weights_only=False" not in result.stderr
    assert outcome.after == outcome.before, "a guarded file changed or vanished"
    if case.check is not None:
        case.check(outcome)


# --- faults ------------------------------------------------------------------------------------


def start_train(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    script = Path(sys.executable).parent / "textclass-train"
    return subprocess.Popen([str(script), *args], cwd=cwd, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"exited early ({process.returncode}): {process.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_sigkill_mid_epoch_leaves_a_loadable_checkpoint_that_resumes(world, tmp_path):
    env = cli_env(world.data, tmp_path)
    # batch 1 makes an epoch 30 steps long, so the kill lands inside epoch 2 or later
    proc = start_train(["trainer.max_epochs=50", "data.batch_size=1", "trainer.enable_progress_bar=false", "logger=[]"], tmp_path, env)
    runs = tmp_path / "outputs" / "train" / "runs"
    wait_for(lambda: any(runs.glob("*/checkpoints/last.ckpt")), proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run,) = runs.iterdir()
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    done = state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    assert done >= 1
    # a kill that lands mid-save leaves that save's temporary file beside last.ckpt, never in it
    run_ok(["textclass-train", f"resume={run}", f"trainer.max_epochs={done + 1}", "callbacks.early_stopping=null"], cwd=tmp_path, env=env)
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 1 + done + 1  # header, the epochs before the kill, the resumed one
    assert not list((run / "checkpoints").glob(".*.tmp")), "the resumed run left a killed save's temporary file behind"


def test_the_next_save_sweeps_away_a_killed_saves_temporary_file(tmp_path):
    from textclass.training.checkpoint_io import AtomicCheckpointIO

    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    killed = last.parent / ".last.ckpt.0badf00d.tmp"  # what a save killed mid-write leaves
    killed.write_bytes(b"half a checkpoint")
    other = last.parent / ".selected.ckpt.0badf00d.tmp"  # another checkpoint's: not this save's business
    other.write_bytes(b"x")
    AtomicCheckpointIO().save_checkpoint({"epoch": 3}, last)
    assert not killed.exists() and other.exists()
    assert torch.load(last, weights_only=True) == {"epoch": 3}


def test_sigkill_mid_cache_build_leaves_no_orphan(tmp_path):
    # big enough that building the cache entry takes a visible moment
    data = tmp_path / "data"
    words = [f"w{i}" for i in range(5000)]
    rows = [(("b", "t", "e", "m")[i % 4], " ".join(words[(i * 7 + j) % 5000] for j in range(12))) for i in range(60000)]
    write_tsv(data / "news" / "train.tsv", "category\ttitle", rows)
    write_tsv(data / "news" / "valid.tsv", "category\ttitle", NEWS_ROWS)
    env = cli_env(data, tmp_path)
    cache = Path(env["TEXTCLASS_CACHE_DIR"])
    proc = start_train(["trainer.max_epochs=1", "embeddings=none", "embeddings.dim=8", "logger=[]"], tmp_path, env)
    wait_for(lambda: any(cache.glob(".tmp-*")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (orphan,) = cache.glob(".tmp-*")
    again = run_ok(["textclass-train", "trainer.max_epochs=1", "embeddings=none", "embeddings.dim=8", "logger=[]",
                    "trainer.enable_progress_bar=false", "data.max_examples=2000"], cwd=tmp_path, env=env)
    assert not orphan.exists() and not list(cache.glob(".tmp-*"))
    assert "interrupted cache build" in again.stdout + again.stderr


def test_two_runs_started_together_get_their_own_directories(world, tmp_path):
    env = cli_env(world.data, tmp_path)
    args = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=[]"]
    procs = [start_train([*args, f"seed={seed}"], tmp_path, env) for seed in (1, 2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-3000:]
    runs = sorted((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(runs) == 2
    seeds = set()
    for run in runs:
        config = yaml.safe_load((run / "config.yaml").read_text())
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        assert f"seed={config['seed']}" in overrides  # the config and the overrides come from one process
        assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "metrics.json").is_file()
        seeds.add(config["seed"])
    assert seeds == {1, 2}


def test_full_disk_keeps_the_previous_checkpoint(world, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'}): needs root in a mount namespace")
    try:
        env = cli_env(world.data, tmp_path)
        args = ["trainer.enable_progress_bar=false", "logger=[]", f"paths.log_dir={disk}"]
        run_ok(["textclass-train", "trainer.max_epochs=1", *args], cwd=tmp_path, env=env)
        (run,) = (disk / "train" / "runs").iterdir()
        last = run / "checkpoints" / "last.ckpt"
        saved = last.read_bytes()
        # fill the disk but for a few KB: the run's logs fit, the next checkpoint does not
        free_kb = shutil.disk_usage(disk).free // 1024
        (disk / "filler").write_bytes(b"\0" * ((free_kb - 24) * 1024))
        second = run_cli(["textclass-train", f"resume={run}", "trainer.max_epochs=2", *args], cwd=tmp_path, env=env)
        assert second.returncode == 2, second.stderr[-3000:]
        assert "Traceback" not in second.stderr
        (line,) = error_lines(second.stderr)
        assert "could not save checkpoint" in line and "No space left on device" in line
        assert last.read_bytes() == saved
        assert torch.load(last, weights_only=True)["epoch"] == 0
        assert not list((run / "checkpoints").glob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], check=False)
