"""The training layer: the recipe, its callbacks and trainer checks, the loader of a trained run,
scoring and prediction. It knows data, tokenizers and models; it names no plug-in."""
