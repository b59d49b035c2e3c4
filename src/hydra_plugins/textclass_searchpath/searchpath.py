"""Hydra asks every SearchPathPlugin for its folders, for `@hydra.main` and the compose API alike.

`textclass-* --config-dir DIR` is turned into TEXTCLASS_CONFIG_DIR (textclass.cli), so the
command-line checks, resume, DDP ranks and multirun jobs all compose from the same folders, and a
user file with the name of a built-in one (model/lstm.yaml) wins over it. Only the standard
library here: Hydra imports this module on every start.
"""

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

CONFIG_DIR_ENV = "TEXTCLASS_CONFIG_DIR"


class UserConfigDirs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        folders = [f for f in os.environ.get(CONFIG_DIR_ENV, "").split(os.pathsep) if f]
        # prepended last to first, so the first folder named is searched first
        for folder in reversed(folders):
            search_path.prepend(provider="textclass-user", path=f"file://{os.path.abspath(folder)}")
