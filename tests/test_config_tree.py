"""The config tree says each thing once: shared keys in a _base file, no experiment or search
restating a default, searches built on an experiment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from textclass.config.compose import CONFIG_DIR

CONF = Path(CONFIG_DIR)


def _defaults(path: Path) -> list:
    return (yaml.safe_load(path.read_text()) or {}).get("defaults", [])


def _train_choices() -> dict[str, str | None]:
    choices = {}
    for entry in _defaults(CONF / "train.yaml"):
        if isinstance(entry, dict):
            ((group, choice),) = entry.items()
            choices[group] = choice
    return choices


def _flat(node: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


RECIPES = sorted([*(CONF / "experiment").rglob("*.yaml"), *(CONF / "hparams_search").glob("*.yaml")])


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.relative_to(CONF).as_posix())
def test_no_recipe_restates_a_default_choice(path):
    """A recipe names its data and model, even the default ones (they are what it is about, and it
    stays the same recipe when the defaults change); any other default it leaves unsaid."""
    defaults = {group: choice for group, choice in _train_choices().items() if group not in ("data", "model")}
    restated = []
    for entry in _defaults(path):
        if isinstance(entry, dict):
            ((key, choice),) = entry.items()
            group = key.removeprefix("override /")
            if key.startswith("override /") and defaults.get(group) == choice:
                restated.append(f"{group}: {choice}")
    assert restated == []


DATA_FILES = sorted(p for p in (CONF / "data").glob("*.yaml") if not p.stem.startswith("_"))


@pytest.mark.parametrize("path", DATA_FILES, ids=lambda p: p.stem)
def test_data_files_share_their_keys_through_base(path):
    base = _flat(yaml.safe_load((CONF / "data" / "_base.yaml").read_text()))
    own = _flat({k: v for k, v in yaml.safe_load(path.read_text()).items() if k != "defaults"})
    assert _defaults(path) == ["_base", "_self_"]
    assert [key for key in own if key in base and own[key] == base[key]] == []
    assert "dataset._target_" in own


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_a_search_runs_on_its_experiment_or_the_one_given():
    on_its_own = _compose(["hparams_search=sst2_lstm"])
    assert on_its_own.data.dataset.name == "sst2"
    assert on_its_own.model.encoder.bidirectional is True
    assert on_its_own.trainer.max_epochs == 5
    assert on_its_own.hydra.sweeper.study_name == "sst2_lstm"
    on_another = _compose(["hparams_search=sst2_lstm", "experiment=best/sst2_lstm"])
    assert on_another.model.encoder.pooling == "max"
    assert on_another.trainer.max_epochs == 3
    assert on_another.optimized_metric == "val/acc_selected"


def test_the_nlp100_recipes_are_their_best_twins():
    for name in ("news_bert", "news_textcnn"):
        nlp100 = _compose([f"experiment={name}"])
        best = _compose([f"experiment=best/{name}"])
        assert {k: v for k, v in nlp100.items() if k != "hydra"} == {k: v for k, v in best.items() if k != "hydra"}


def test_the_pruning_callback_belongs_to_searches():
    """A plain run names no plug-in callback; a search file brings its own pruning callback, and the
    sweeper adds one following optimized_metric to the trials of a search without one."""
    from textclass.search.sweeper import pruning_overrides

    plain = _compose([])
    assert "optuna_pruning" not in plain.callbacks
    assert pruning_overrides(plain.callbacks) == [
        "++callbacks.optuna_pruning._target_=textclass.search.pruning.OptunaPruning",
        "++callbacks.optuna_pruning.monitor=${optimized_metric}",
    ]
    search = _compose(["hparams_search=sst2_lstm"])
    assert search.callbacks.optuna_pruning._target_ == "textclass.search.pruning.OptunaPruning"
    assert search.callbacks.optuna_pruning.monitor == "val/acc"
    assert pruning_overrides(search.callbacks) == []
