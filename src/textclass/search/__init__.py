"""Hyperparameter search with Optuna: the search space, trial pruning and the study's results.

The Hydra side (the `textclass_optuna` sweeper that asks and tells trials) lives in
src/hydra_plugins/textclass_optuna_sweeper/, where Hydra discovers it; the configs are in
conf/hparams_search/.
"""
