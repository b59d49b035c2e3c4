"""The class Hydra builds for `hydra/sweeper=textclass_optuna`: a thin shim.

Hydra imports every plugin module on every start (textclass-train --help included); the
implementation, and optuna with it, is imported only when a search is actually set up.
"""

from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class TextclassOptunaSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        from textclass.search.sweeper import OptunaSweeperImpl

        self.impl = OptunaSweeperImpl(**settings)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        return self.impl.sweep(arguments)
