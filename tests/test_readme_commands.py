"""Every textclass command line in README.md and the documentation site (docs/**/*.md) runs, as
written, through the real CLI.

The module guarantees that each `textclass <verb>` (or `textclass-<verb>`) command the README and
the docs show (in ```bash blocks, and in inline code spans in prose and tables) exits 0 without a
traceback on the tiny fixture data, run through its command's entry point in a worker process
(helpers/inprocess.py: the exit code and output a terminal shows) from a fresh working directory. Only the
README's placeholders are replaced, by the rules in `PLACEHOLDERS` (and `ENV_PLACEHOLDERS`, `ELISION`,
`INPUT_FILES`, `CONFIG_DIR_FLAG`); optional `[parts]` are all included (the first of `a|b`), and an alternative in a
trailing comment (`# or resume=last`) is a command of its own. Nothing is added to a command to make
it faster (the tiny data keeps them fast), except that an Optuna search runs a tenth of its trials. A new command in the README is picked up automatically,
and extraction must find at least `MIN_COMMANDS` of them.

Commands that need an earlier run (eval, predict, export, `resume=`) run after one training run,
`textclass-train` (the README's main job), in its working directory; a search that only raises
`hydra.sweeper.n_trials` continues the study of the command it extends, in that command's directory.
Everything else runs in a directory of its own. Two worker processes run the chains, each command in
the worker's process (helpers/inprocess.py's warm_workers): a process per command would add its
imports, seconds each, and prove nothing more (test_package.py runs the installed scripts).
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.cli import cli_env
from helpers.inprocess import run_main, warm_workers
from helpers.data import write_table, write_tiny_data, write_tsv, NEWS_ROWS
from helpers.paths import REPO
from textclass.commands.main import VERBS

# the README commands run in one module fixture (slow: dozens of CLI processes); the parsing tests are quick
pytestmark = pytest.mark.timeout(1800)

README = REPO / "README.md"
# the pages whose commands run: the README and every page of the documentation site
PAGES = (README, *sorted((REPO / "docs").rglob("*.md")))
# `textclass <verb>` runs as its alias `textclass-<verb>` (the same function; tests/test_commands.py
# tests the dispatch itself)
PROGRAMS = tuple(f"textclass-{verb}" for verb in VERBS)
COMMAND = re.compile(r"(?:^|[\s/])textclass(?:-\w|\s+\w)")
MIN_COMMANDS = 20
# The training run that eval, predict and resume commands use: the README's main job.
BASE_RUN: tuple[str, ...] = ("textclass-train",)
# The sweep that textclass-compare commands read (beside the base run): two seeds of two models.
BASE_SWEEP: tuple[str, ...] = ("textclass-train", "seeds=2", "model=bow,cnn")

# README placeholder -> what it stands for here, applied in order to every argument.
# {run} is the fixture's training run directory relative to the working directory, {run_name} its
# name, {sweep} its sweep directory (BASE_SWEEP).
PLACEHOLDERS: tuple[tuple[str, str], ...] = (
    (r"<run>", "{run_name}"),
    (r"^outputs/train/runs/<run1>$", "{run}"),  # textclass-compare of two runs: the base run,
    (r"^outputs/train/runs/<run2>$", "{sweep}/0"),  # and the base sweep's first job (the same data)
    (r"^outputs/train/multiruns/<time>$", "{sweep}"),
    (r"<\.\.\.>", "{run}/checkpoints"),  # `ckpt_path=<...>/last.ckpt`
    (r"(?<=experiment=)best/<data>_<arch>", "best/news_bow"),
    (r"(?<=experiment=)<(?:name|config)>", "news_lstm"),
    (r"(?<=hparams_search=)<name>", "news_textcnn"),
    (r"(?<=input=)FILE$", "sentences.txt"),
    (r",\.\.\.,", ","),  # a sweep elided as `a,...,b` runs `a,b`
)
# Environment assignments in a README command that the test's own environment replaces.
ENV_PLACEHOLDERS = ("TEXTCLASS_DATA_DIR", "TEXTCLASS_CACHE_DIR")
# A `...` argument ("and more overrides"): in an Optuna search it stands for the searched
# parameters, so it becomes one; elsewhere it is dropped.
ELISION = "..."
SEARCH_SWEEPER = "hydra/sweeper=textclass_optuna"
SEARCH_PARAMETER = "optimizer.lr=tag(log, interval(1e-4, 1e-1))"
# An Optuna search runs a tenth of its trials (see shorter_search).
N_TRIALS = "hydra.sweeper.n_trials="
TRIALS_DIVISOR = 10
TRIALS_UNSET = 2
MAX_SEEDS = 2
# `key=NAME` arguments whose file is written into the working directory first.
INPUT_FILES = ("file", "input")
# `--config-dir NAME` (the user's config folder): an empty folder of that name, so the built-in options serve
CONFIG_DIR_FLAG = "--config-dir"

FENCE = re.compile(r"^```(\w*)\s*$")
INLINE_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)*)`")
UNFILLED = re.compile(r"<[^<>]*>")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
OR_ALTERNATIVE = re.compile(r"\bor\s+([\w./-]+=[^\s;,]+)")


@dataclass(frozen=True)
class ReadmeCommand:
    """One command line of a page: where it is, its text there, and what to run before placeholders are filled."""

    line: int
    text: str
    args: tuple[str, ...]
    stdin: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    page: str = "README.md"  # relative to the repository

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def program(self) -> str:
        return self.args[0]

    @property
    def needs_run(self) -> bool:
        """Whether it reads the fixture's training run (a checkpoint, or resume)."""
        return self.program != "textclass-train" or "<run>" in self.text or "<...>" in self.text or self.resumes

    @property
    def resumes(self) -> bool:
        return any(a.startswith("resume=") for a in self.args)


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    stdin: str | None
    cwd: Path
    returncode: int
    stdout: str
    stderr: str
    wall_s: float

    @property
    def shown(self) -> str:
        pipe = f"echo {shlex.quote(self.stdin.rstrip(chr(10)))} | " if self.stdin else ""
        return pipe + shlex.join(self.argv)


# --- extraction -------------------------------------------------------------------------------


def unquoted(line: str) -> Iterator[tuple[int, str]]:
    """(index, character) of the characters of a shell line outside quotes and escapes."""
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        else:
            yield i, ch


def split_comment(line: str) -> tuple[str, str]:
    """The line without its `# comment` (a `#` starting a word outside quotes), and the comment."""
    for i, ch in unquoted(line):
        if ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def split_unquoted(line: str, separator: str) -> list[str]:
    """`line` split at each `separator` (surrounded by spaces) outside quotes."""
    cuts = [i for i, _ in unquoted(line) if line.startswith(f" {separator} ", i)]
    bounds = [0, *(j for i in cuts for j in (i, i + len(separator) + 2)), len(line)]
    return [line[a:b].strip() for a, b in zip(bounds[::2], bounds[1::2])]


def expand_optional(tokens: list[str]) -> list[str]:
    """Unwrap `[optional parts]` (brackets matched with nesting, so `[splits=[valid]]` keeps the Hydra
    list), taking the first of `a|b` alternatives inside; a token not starting with `[` is kept."""
    out: list[str] = []
    group: list[str] = []
    depth = 0
    for token in tokens:
        if not group and not token.startswith("["):
            out.append(token)
            continue
        group.append(token)
        depth += token.count("[") - token.count("]")
        if depth == 0:
            inner = shlex.split(" ".join(group)[1:-1])
            out.extend(expand_optional([t.split("|", 1)[0] for t in inner]))
            group = []
    if group:
        raise ValueError(f"unbalanced [ in {' '.join(tokens)!r}")
    return out


def parse_command(text: str, line: int, page: str = "README.md") -> list[ReadmeCommand]:
    """The command (and any `# or key=value` alternative of it) in one shell line of `page`."""
    shell, comment = split_comment(text)
    segment = next(s for s in split_unquoted(shell, "&&") if COMMAND.search(s))
    stdin = None
    *source, segment = split_unquoted(segment, "|")
    if source:
        echo = shlex.split(source[-1])
        if len(source) > 1 or echo[0] != "echo":
            raise ValueError(f"{page}:{line}: only `echo ... |` can feed a command: {text!r}")
        stdin = " ".join(echo[1:]) + "\n"
    tokens = shlex.split(segment)
    env: list[tuple[str, str]] = []
    while tokens and ENV_ASSIGNMENT.match(tokens[0]):
        key, value = tokens.pop(0).split("=", 1)
        env.append((key, value))
    program = Path(tokens[0]).name  # `.venv/bin/textclass-train` is the same entry point
    written = " ".join(tokens[:2]) if program == "textclass" else tokens[0]
    if program == "textclass" and len(tokens) > 1:
        program = f"textclass-{tokens.pop(1)}"
    if program not in PROGRAMS:
        raise ValueError(f"{page}:{line}: {written!r} is not a textclass command ({', '.join(PROGRAMS)}): {text!r}")
    args = (program, *expand_optional(tokens[1:]))
    normalized = " ".join(shell.split())
    commands = [ReadmeCommand(line, normalized, args, stdin, tuple(env), page)]
    for alternative in OR_ALTERNATIVE.findall(comment):
        key = alternative.split("=", 1)[0] + "="
        if any(a.startswith(key) for a in args):
            original = next(a for a in args if a.startswith(key))
            swapped = tuple(alternative if a == original else a for a in args)
            commands.append(ReadmeCommand(line, normalized.replace(original, alternative), swapped, stdin, tuple(env), page))
    return commands


def shell_lines(block: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """The lines of a shell block with `\\` continuations joined, numbered by their first line."""
    pending: list[str] = []
    start = 0
    for number, text in block:
        start = start if pending else number
        if text.rstrip().endswith("\\"):
            pending.append(text.rstrip()[:-1])
            continue
        yield start, " ".join([*pending, text])
        pending = []
    if pending:
        yield start, " ".join(pending)


def readme_commands(readme: str, page: str = "README.md") -> list[ReadmeCommand]:
    """Every textclass command line of a page, in order, deduplicated after substitution."""
    found: list[ReadmeCommand] = []
    prose: list[str] = []
    block: list[tuple[int, str]] | None = None
    language = ""
    for number, text in enumerate(readme.splitlines(), 1):
        fence = FENCE.match(text)
        if fence and block is None:
            block, language = [], fence.group(1)
            prose.append("")
        elif fence:
            if language == "bash":
                for start, shell in shell_lines(block):
                    if COMMAND.search(split_comment(shell)[0]):
                        found.extend(parse_command(shell, start, page))
            block = None
            prose.append("")
        elif block is not None:
            block.append((number, text))
            prose.append("")
        else:
            prose.append(text)
    prose_text = "\n".join(prose)
    for span in INLINE_SPAN.finditer(prose_text):
        code = " ".join(span.group(1).split())
        words = code.split(" ")
        bare = len(words) == 1 or (words[0] == "textclass" and len(words) == 2)  # `textclass compare` in a sentence is its name
        if (words[0] in PROGRAMS or words[0] == "textclass") and not bare:
            found.extend(parse_command(code, prose_text.count("\n", 0, span.start()) + 1, page))
    unique: dict[tuple, ReadmeCommand] = {}
    for command in found:
        unique.setdefault(identity(command), command)
    return list(unique.values())


# --- placeholders -----------------------------------------------------------------------------


def fill(command: ReadmeCommand, run_dir: str, sweep_dir: str = "outputs/train/multiruns/SWEEP") -> tuple[str, ...]:
    """The command's arguments with the README placeholders replaced (see PLACEHOLDERS)."""
    values = {"run": run_dir, "run_name": Path(run_dir).name, "sweep": sweep_dir}
    args: list[str] = []
    for arg in command.args:
        for pattern, replacement in PLACEHOLDERS:
            arg = re.sub(pattern, replacement.format(**values), arg)
        if arg != ELISION:
            args.append(arg)
        elif SEARCH_SWEEPER in command.args:
            args.append(SEARCH_PARAMETER)
    unfilled = [a for a in args if UNFILLED.search(a)]
    if unfilled:
        raise ValueError(f"{command.where}: no rule in PLACEHOLDERS for {unfilled}: {command.text!r}")
    return tuple(fewer_seeds(shorter_search(args)))


def fewer_seeds(args: list[str]) -> list[str]:
    """`seeds=N` run as seeds=MAX_SEEDS at most: five tiny-data runs of a recipe prove no more than two."""
    return [f"seeds={min(int(a.removeprefix('seeds=')), MAX_SEEDS)}" if re.fullmatch(r"seeds=\d+", a) else a for a in args]


def shorter_search(args: list[str]) -> list[str]:
    """An Optuna search's trial count divided by TRIALS_DIVISOR (rounded up), TRIALS_UNSET when the
    command sets none: the searches' dozens of trials on tiny data prove no more than a few, and a
    command that raises n_trials still continues its study by a few more."""
    if not any(a.startswith("hparams_search=") or a == SEARCH_SWEEPER for a in args):
        return args
    given = [a for a in args if a.startswith(N_TRIALS)]
    if not given:
        return [*args, f"{N_TRIALS}{TRIALS_UNSET}"]
    return [f"{N_TRIALS}{math.ceil(int(a.removeprefix(N_TRIALS)) / TRIALS_DIVISOR)}" if a in given else a for a in args]


def own_env(command: ReadmeCommand) -> dict[str, str]:
    """The command's environment assignments that stay (the test's data and cache replace the others)."""
    return {k: v for k, v in command.env if k not in ENV_PLACEHOLDERS}


def identity(command: ReadmeCommand) -> tuple:
    """What makes two README commands the same run."""
    return fill(command, "outputs/train/runs/RUN"), command.stdin, tuple(own_env(command).items())


def write_input_files(args: tuple[str, ...], cwd: Path) -> None:
    """Write the file each `file=NAME` (a labeled news TSV) or `input=NAME` (sentences) names, the
    own data a `data=files` / `data=hf` command reads (tiny news rows, in its columns and format), and
    make the (empty) folder a `--config-dir NAME` names."""
    write_own_data(args, cwd)
    for flag, value in zip(args, args[1:]):
        if flag == CONFIG_DIR_FLAG:
            (cwd / value).mkdir(parents=True, exist_ok=True)
    for arg in args:
        key, _, value = arg.partition("=")
        if key not in INPUT_FILES or not value or value == "-" or (cwd / value).exists():
            continue
        if key == "file":
            write_tsv(cwd / value, "category\ttitle", NEWS_ROWS[1::2])
        else:
            (cwd / value).write_text("".join(f"{title}\n" for _, title in NEWS_ROWS[:3]), encoding="utf-8")


def write_own_data(args: tuple[str, ...], cwd: Path) -> None:
    options = dict(a.split("=", 1) for a in args if a.startswith("data.dataset.") and "=" in a)
    text_column = options.get("data.dataset.text_column", "text")
    label_column = options.get("data.dataset.label_column", "label")
    label_columns = options.get("data.dataset.label_columns", "").strip("[]").split(",") if "data.dataset.label_columns" in options else None
    multi_label = options.get("data.dataset.multi_label") == "true"
    rows = []
    for i, (code, title) in enumerate(NEWS_ROWS * 3):
        labels = [code, "odd" if i % 2 else "even"]
        if label_columns:
            rows.append({text_column: title, **{c: int(j == i % len(label_columns)) for j, c in enumerate(label_columns)}})
        else:
            rows.append({text_column: title, label_column: labels if multi_label else code})
    for key in ("train", "valid", "test"):
        name = options.get(f"data.dataset.{key}")
        if name and not (cwd / name).exists():
            write_table(cwd / name, rows)
    if "data.dataset.path" in options and not (cwd / options["data.dataset.path"]).exists():
        write_table(cwd / options["data.dataset.path"], rows)  # a save_to_disk directory


# A command that holds out part of train (the tutorials' `data.holdout=0.1`) is for data without a test
# file, as the shared copy is (news: train and valid; SST-2: train and dev): it reads tiny data in that layout.
HOLDOUT = "data.holdout="
SHARED_LAYOUT = "shared_layout"


# --- running ----------------------------------------------------------------------------------


def run_one(command: ReadmeCommand, cwd: Path, env: dict[str, str], run_dir: str, sweep_dir: str = "") -> Result:
    args = fill(command, run_dir, sweep_dir)
    write_input_files(args, cwd)
    full_env = {**own_env(command), **env}
    if any(a.startswith(HOLDOUT) for a in args):
        full_env["TEXTCLASS_DATA_DIR"] = str(Path(env["TEXTCLASS_DATA_DIR"]) / SHARED_LAYOUT)
    start = time.monotonic()
    done = run_main(list(args), cwd, full_env, command.stdin)
    return Result(args, command.stdin, cwd, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def base_run_dir(cwd: Path) -> str | None:
    """The fixture's training run, relative to `cwd` (None when it left no checkpoint)."""
    runs = sorted((cwd / "outputs" / "train" / "runs").glob("*/checkpoints/last.ckpt"))
    return str(runs[0].parents[1].relative_to(cwd)) if runs else None


def not_run(command: ReadmeCommand, base: Result) -> Result:
    """The result of a command that needs the fixture's training run when that run failed."""
    reason = f"not run: the training run it needs, `{base.shown}`, exited {base.returncode} with no checkpoint:\n"
    return Result(command.args, command.stdin, base.cwd, -1, "", reason + base.stderr[-2000:], 0.0)


def is_base_run(command: ReadmeCommand) -> bool:
    return identity(command) == identity(BASE_COMMAND)


def extends(command: ReadmeCommand, earlier: ReadmeCommand) -> bool:
    """Whether `command` is `earlier` with only `hydra.sweeper.n_trials` added or changed."""
    def without_n_trials(c: ReadmeCommand) -> tuple[str, ...]:
        return tuple(a for a in c.args if not a.startswith("hydra.sweeper.n_trials="))

    return "-m" in command.args and command.args != earlier.args and without_n_trials(command) == without_n_trials(earlier)


def chains(commands: list[ReadmeCommand]) -> tuple[list[ReadmeCommand], list[list[ReadmeCommand]]]:
    """The commands on the fixture's run (resumes last), and chains of the others: each chain runs in
    order in a directory of its own."""
    on_run = [c for c in commands if c.needs_run and not c.resumes] + [c for c in commands if c.resumes]
    others: list[list[ReadmeCommand]] = []
    for command in (c for c in commands if not c.needs_run and not is_base_run(c)):
        chain = next((ch for ch in others if any(extends(command, c) for c in ch)), None)
        if chain is None:
            others.append([command])
        else:
            chain.append(command)
    others.sort(key=lambda ch: "-m" not in ch[0].args)  # the multiruns, the longest, first
    return on_run, others


BASE_COMMAND = ReadmeCommand(0, " ".join(BASE_RUN), BASE_RUN)
def page_commands(pages: tuple[Path, ...]) -> list[ReadmeCommand]:
    """The commands of every page, each once (the first page showing a command names it)."""
    unique: dict[tuple, ReadmeCommand] = {}
    for path in pages:
        for command in readme_commands(path.read_text(encoding="utf-8"), str(path.relative_to(REPO))):
            unique.setdefault(identity(command), command)
    return list(unique.values())


COMMANDS = page_commands(PAGES)


def run_chain(chain: list[ReadmeCommand], cwd: Path, env: dict[str, str]) -> dict[ReadmeCommand, Result]:
    """The commands of `chain`, in order, in `cwd`."""
    cwd.mkdir()
    return {command: run_one(command, cwd, env, "") for command in chain}


def run_on_base(on_run: list[ReadmeCommand], cwd: Path, env: dict[str, str]) -> dict[ReadmeCommand, Result]:
    """The README's main job, then the commands that use its run (and a sweep, for compare)."""
    cwd.mkdir()
    base = run_one(BASE_COMMAND, cwd, env, "")
    results = {command: base for command in filter(is_base_run, COMMANDS)}  # the README's own main job
    run_dir = base_run_dir(cwd)
    if any(c.program in ("textclass-compare", "textclass-summary") for c in on_run):
        run_one(ReadmeCommand(0, " ".join(BASE_SWEEP), BASE_SWEEP), cwd, env, "")
    sweeps = sorted((cwd / "outputs" / "train" / "multiruns").glob("*/multirun.yaml"))
    sweep_dir = str(sweeps[0].parent.relative_to(cwd)) if sweeps else "no-sweep"
    for command in on_run:
        results[command] = run_one(command, cwd, env, run_dir, sweep_dir) if run_dir else not_run(command, base)
    return results


@pytest.fixture(scope="module")
def readme_results(tmp_path_factory: pytest.TempPathFactory) -> dict[ReadmeCommand, Result]:
    """Run every README command on tiny data, two chains at a time; the result of each."""
    root = tmp_path_factory.mktemp("readme")
    data = write_tiny_data(root / "data")
    write_tiny_data(data / SHARED_LAYOUT, news_test=False)
    env = cli_env(data, root)
    on_run, others = chains(COMMANDS)
    results: dict[ReadmeCommand, Result] = {}
    with warm_workers() as pool:
        futures = [pool.submit(run_on_base, on_run, root / "base", env)]
        futures += [pool.submit(run_chain, chain, root / f"cmd{i:02d}", env) for i, chain in enumerate(others)]
        for future in futures:
            results.update(future.result())
    return results


# --- tests ------------------------------------------------------------------------------------


def test_extraction_finds_the_readme_commands() -> None:
    extracted = [c.text for c in COMMANDS]
    assert len(COMMANDS) >= MIN_COMMANDS, f"only {len(COMMANDS)} commands extracted from README.md and docs/: {extracted}"
    assert {c.page for c in COMMANDS} >= {"README.md", "docs/tutorials/your-dataset.md"}
    assert {c.program for c in COMMANDS} == set(PROGRAMS)
    assert any(c.stdin for c in COMMANDS), "the `echo ... | textclass-predict` line lost its stdin"


def test_shell_line_parsing() -> None:
    assert split_comment('echo "a # b" | x  # note') == ('echo "a # b" | x', "note")
    assert split_comment("x 'k=a#b'") == ("x 'k=a#b'", "")
    assert expand_optional(["x", "[splits=[valid]]", "[out=a.jsonl|.tsv]", "[a=1", "[b=2]]"]) == [
        "x", "splits=[valid]", "out=a.jsonl", "a=1", "b=2"
    ]
    (piped,) = parse_command('echo "Fed # up" | textclass-predict ckpt_path=<...>/last.ckpt  # c', 1)
    assert piped.stdin == "Fed # up\n" and piped.args == ("textclass-predict", "ckpt_path=<...>/last.ckpt")
    (setup,) = parse_command("bash .ci/setup && A=b .venv/bin/textclass-train", 1)
    assert setup.args == ("textclass-train",) and setup.env == (("A", "b"),)
    (verb,) = parse_command("bash .ci/setup && .venv/bin/textclass train model=lstm", 3, "docs/x.md")
    assert verb.args == ("textclass-train", "model=lstm") and verb.where == "docs/x.md:3"
    with pytest.raises(ValueError, match="docs/x.md:4: 'textclass trian' is not a textclass command"):
        parse_command("textclass trian model=lstm", 4, "docs/x.md")
    spans = readme_commands("`textclass compare` ranks runs; `textclass eval ckpt_path=outputs/train/runs/<run>` scores one.", "p.md")
    assert [c.args[0] for c in spans] == ["textclass-eval"]
    resumed = parse_command("textclass-train resume=r   # or resume=last; add e.g. x=1", 1)
    assert [c.args for c in resumed] == [("textclass-train", "resume=r"), ("textclass-train", "resume=last")]
    assert fill(ReadmeCommand(1, "", ("textclass-train", "-m", "experiment=a,...,b", "..."), None), "r") == (
        "textclass-train", "-m", "experiment=a,b"
    )
    search = ReadmeCommand(1, "", ("textclass-train", "-m", SEARCH_SWEEPER, "..."), None)
    assert fill(search, "r") == ("textclass-train", "-m", SEARCH_SWEEPER, SEARCH_PARAMETER, f"{N_TRIALS}{TRIALS_UNSET}")
    longer = ReadmeCommand(1, "", ("textclass-train", "-m", "hparams_search=x", f"{N_TRIALS}40", "y=1"), None)
    assert fill(longer, "r") == ("textclass-train", "-m", "hparams_search=x", f"{N_TRIALS}4", "y=1")
    seeds = ReadmeCommand(1, "", ("textclass-train", "seeds=5", "experiment=best/news_bow"), None)
    assert fill(seeds, "r") == ("textclass-train", f"seeds={MAX_SEEDS}", "experiment=best/news_bow")


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[c.text for c in COMMANDS])
def test_readme_command_runs(
    command: ReadmeCommand,
    readme_results: dict[ReadmeCommand, Result],
    record_property: Callable[[str, object], None],
) -> None:
    result = readme_results[command]
    record_property("wall_s", round(result.wall_s, 1))
    print(f"{result.wall_s:6.1f} s  {result.shown}")
    where = f"{command.where}: {command.text}\nran: {result.shown}\nin {result.cwd}\n"
    tail = f"stderr tail:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{where}exit {result.returncode} after {result.wall_s:.1f} s\n{tail}"
    output = result.stdout + result.stderr
    assert "Traceback" not in output, f"{where}printed a traceback:\n{output[output.index('Traceback') :][:3000]}"


def test_ci_runs_the_readme_test_command() -> None:
    """CI runs what the README tells a user to run for the tests, and nothing weaker."""
    readme = README.read_text()
    (test_command,) = [line for line in readme.splitlines() if line.startswith("bash .ci/setup") and "pytest" in line]
    assert "lint-imports" in test_command
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci
