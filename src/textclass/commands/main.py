"""`textclass <verb> ...`: one command for every verb, as the textclass-<verb> scripts run them.

`textclass --help` (or no verb) lists the verbs; it imports no verb's module, so it answers at once.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

# verb -> (its module under textclass.commands, one line on what it does)
VERBS = {
    "train": ("train", "train a model (Hydra overrides: data=, model=, optimizer=, ...; seeds=N; resume=<run>; -m for sweeps)"),
    "eval": ("eval", "accuracy, macro-F1 and confusion matrix of a run (ckpt_path=<run>) on its splits or a labeled file"),
    "predict": ("predict", "labels and class probabilities of new sentences (text=, input=FILE or stdin), optionally explained"),
    "export": ("export", "a run as one ONNX or TorchScript file, with its tokenizer, labels and a manifest beside it"),
    "compare": ("compare", "rank runs and sweeps' seed groups on their saved predictions, with significance tests"),
    "ensemble": ("ensemble", "average runs' class probabilities into an ensemble directory used like a run"),
    "summary": ("summary", "write a sweep's summary and aggregates again from its job directories"),
}
HYDRA_VERBS = ("train", "eval", "predict", "export")  # they read their arguments from sys.argv, as Hydra does


def usage() -> str:
    width = max(map(len, VERBS))
    lines = [f"  {verb:<{width}}  {text}" for verb, (_, text) in VERBS.items()]
    return (
        "usage: textclass <verb> [arguments ...]   (textclass <verb> --help for a verb's own)\n\nverbs:\n"
        + "\n".join(lines)
        + "\n\n-v (anywhere) shows the third-party notes textclass leaves out. Each verb is also a command of its own: textclass-<verb>.\n"
    )


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), end="")
        return
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"error: unknown verb {verb!r}; the verbs are {', '.join(VERBS)} (textclass --help says what each does)", file=sys.stderr)
        raise SystemExit(2)
    command = importlib.import_module(f"textclass.commands.{VERBS[verb][0]}")
    if verb in HYDRA_VERBS:
        # as the verb's own script: Lightning starts DDP's other processes with sys.argv
        sys.argv = [str(Path(sys.argv[0]).with_name(f"textclass-{verb}")), *rest]
        command.main()
    else:
        command.main(rest)


if __name__ == "__main__":
    main()
