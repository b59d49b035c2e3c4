"""textclass's Optuna sweeper for Hydra: `hydra/sweeper=textclass_optuna` (see conf/hparams_search/)."""
