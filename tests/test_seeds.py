"""`textclass-train seeds=N`: a multirun over seed=1,...,N whose summary aggregates the repeats; the
command-line rewrite (quick) and one real two-seed sweep on tiny data (slow)."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers.cli import cli_env, run_cli, run_ok
from helpers.data import write_tiny_data
from textclass.commands.train import seeds_arguments
from textclass.errors import ConfigError


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model=lstm"], ["model=lstm"]),  # no seeds=: left as it is
        (["seeds=3", "experiment=x"], ["-m", "experiment=x", "seed=1,2,3"]),
        (["-m", "seeds=2", "model=lstm,gru"], ["-m", "model=lstm,gru", "seed=1,2"]),
        (["seeds=1", "--multirun"], ["--multirun", "seed=1"]),
        (["seeds=2", "seeds=4"], ["-m", "seed=1,2,3,4"]),  # the last one counts, as for any override
        (["seeds=2", "hparams_search=null", "data.seed_offset=1"], ["-m", "hparams_search=null", "data.seed_offset=1", "seed=1,2"]),
    ],
)
def test_seeds_becomes_a_seed_sweep(args, expected):
    assert seeds_arguments(args) == expected


@pytest.mark.parametrize(
    "args, message",
    [
        (["seeds=0"], "seeds=0: the number of seeds, a positive integer"),
        (["seeds=-2"], "seeds=-2: the number of seeds"),
        (["seeds=two"], "seeds=two: the number of seeds"),
        (["seeds=1,2"], "for seeds of your own: -m seed=7,11,13"),
        (["seeds=٣"], "the number of seeds"),  # a digit int() reads, not an ASCII one
        (["seeds=3", "seed=7"], "seeds=3 and seed=7: seeds=N sets seed=1,...,N itself"),
        (["-m", "seed=1,2", "seeds=3"], "seeds=3 and seed=1,2"),
        (["seeds=3", "+seed=7"], "seeds=3 and \\+seed=7"),
        (["-m", "seeds=3", "hparams_search=news_textcnn"], "rerun the best config \\(best_params.yaml\\) with seeds=3"),
        (["seeds=3", "resume=last"], "seeds=3 with resume=last: resume continues one run"),
    ],
)
def test_bad_seeds_is_one_config_error(args, message):
    with pytest.raises(ConfigError, match=message) as raised:
        seeds_arguments(args)
    assert "\n" not in str(raised.value)


def test_bad_seeds_on_the_command_line_is_one_error_line(tmp_path):
    result = run_cli(["textclass-train", "seeds=0"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: seeds=0: the number of seeds, a positive integer (seeds=5 trains with seed=1,2,3,4,5); for seeds of your own: -m seed=7,11,13"
    ]


@pytest.mark.slow
def test_seeds_runs_a_sweep_with_aggregates(tmp_path):
    data = write_tiny_data(tmp_path / "data", sst2=False)
    fast = ["embeddings=none", "data.vocab.min_freq=1", "trainer.max_epochs=1", "data.batch_size=4", "trainer.accelerator=cpu",
            "logger=[]", "trainer.enable_progress_bar=false"]
    run_ok(["textclass-train", "seeds=2", *fast, "hydra.sweep.dir=sweep"], cwd=tmp_path, env=cli_env(data, tmp_path))
    sweep = tmp_path / "sweep"
    jobs = sorted(p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml"))
    assert [yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())[-1] for job in jobs] == ["seed=1", "seed=2"]
    (group,) = json.loads((sweep / "aggregate.json").read_text())["groups"]
    assert (group["n"], group["jobs"]) == (2, [0, 1])
    assert "trainer.max_epochs=1" in group["overrides"] and "seed" not in group["overrides"]
    assert (group["headline"], group["headline_split"]) == ("test/acc", "test")  # tiny news has a test split
    assert (sweep / "aggregate.md").is_file() and (sweep / "aggregate.csv").is_file()
    assert "## Repeats over data.fold / seed" in (sweep / "summary.md").read_text()
