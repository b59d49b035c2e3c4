"""Distillation (distill=kd, a plug-in): the KL term against a hand computation, alpha=1 is plain
training (the real CLI, same seed: identical weights and losses), the teacher's logits are computed
once and cached, and a teacher of other splits or other classes is refused with one line."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.utilities import move_data_to_device

from helpers.cli import cli_env, failed_run, in_parallel, run_cli, run_ok, TinyRun
from helpers.data import write_tiny_data, write_tsv, NEWS_ROWS
from textclass.config.compose import compose_config
from textclass.data.batching import EncodedDataset, EncodedTexts, Encoding, collate
from textclass.distill import Distillation
from textclass.distill.augment import AugmentSpec, augment, nearest_neighbours
from textclass.distill.loss import LOGITS_KEY, DistillationObjective, DistillSpec, distillation_loss
from textclass.distill.teacher import teacher_checkpoint, untouched_random_state
from textclass.errors import ConfigError
from textclass.models.classifier import TextClassifier
from textclass.training.module import ClassifierModule, check_config
from textclass.models.embedding import build_embedding
from textclass.models.encoders.bow import BagOfEmbeddings


def softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def hand_kl(teacher: list[list[float]], student: list[list[float]], t: float) -> float:
    """T^2 * mean over examples of sum_c p_c log(p_c / q_c), p = softmax(teacher/T), q = softmax(student/T)."""
    total = 0.0
    for t_row, s_row in zip(teacher, student):
        p, q = softmax([v / t for v in t_row]), softmax([v / t for v in s_row])
        total += sum(pc * math.log(pc / qc) for pc, qc in zip(p, q))
    return t * t * total / len(teacher)


TEACHER = [[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]
STUDENT = [[0.5, 0.5, 0.0], [-1.0, 2.0, 1.0]]


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kl_term_equals_the_hand_computation(temperature):
    got = distillation_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), temperature)
    assert got.item() == pytest.approx(hand_kl(TEACHER, STUDENT, temperature), rel=1e-6)


def test_kl_term_of_a_stated_example():
    # T=1, one example: p = softmax([ln 3, 0]) = [3/4, 1/4], q = softmax([0, 0]) = [1/2, 1/2]
    # KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    got = distillation_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]]), 1.0)
    assert got.item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-6)


def test_kl_term_is_zero_when_the_student_agrees():
    assert distillation_loss(torch.tensor(TEACHER), torch.tensor(TEACHER), 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_multi_label_kl_is_the_mean_bernoulli_kl():
    t, teacher, student = 2.0, [[1.0, -2.0]], [[0.0, 1.0]]

    def sigmoid(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    terms = []
    for a, b in zip(teacher[0], student[0]):
        p, q = sigmoid(a / t), sigmoid(b / t)
        terms.append(p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q)))
    got = distillation_loss(torch.tensor(student), torch.tensor(teacher), t, multi_label=True)
    assert got.item() == pytest.approx(t * t * sum(terms) / len(terms), rel=1e-6)


def tiny_classifier(**kwargs) -> TextClassifier:
    torch.manual_seed(0)
    encoder = BagOfEmbeddings(build_embedding(20, 4, None, freeze=False))
    return ClassifierModule(TextClassifier(encoder, num_classes=3, **kwargs), torch.optim.SGD)


def teacher_batch():
    examples = [(np.array([1, 2, 3]), 0, {LOGITS_KEY: np.array(TEACHER[0], np.float32)}), (np.array([4, 5]), 1, {LOGITS_KEY: np.array(TEACHER[1], np.float32)})]
    return collate(examples)


def test_training_loss_is_alpha_ce_plus_one_minus_alpha_t2_kl():
    alpha, t = 0.3, 2.0
    model = tiny_classifier()
    model.objective = DistillationObjective(alpha, t, multi_label=False)  # what the plug-in sets
    batch = teacher_batch()
    logits = model(batch)
    # cross-entropy by hand: mean of -log softmax(logits)[label]
    ce = sum(-math.log(softmax(row)[y]) for row, y in zip(logits.tolist(), batch.labels.tolist())) / len(batch)
    expected = alpha * ce + (1 - alpha) * hand_kl(TEACHER, logits.tolist(), t)
    assert model.training_loss(logits, batch).item() == pytest.approx(expected, rel=1e-5)


def test_alpha_one_and_no_teacher_give_the_plain_loss_exactly():
    batch = teacher_batch()
    plain = tiny_classifier()
    logits = plain(batch)
    loss = plain.model.compute_loss(logits, batch.labels)
    only_labels = tiny_classifier()
    only_labels.objective = DistillationObjective(1.0, 3.0, multi_label=False)
    assert torch.equal(only_labels.training_loss(logits, batch), loss)
    without_teacher = collate([(np.array([1, 2, 3]), 0), (np.array([4, 5]), 1)])
    assert without_teacher.extras == {}
    assert torch.equal(plain.training_loss(logits, without_teacher), loss)


@pytest.mark.parametrize(
    "options, key",
    [({"alpha": 1.5}, "distill.alpha"), ({"temperature": 0}, "distill.temperature"), ({"teacher": 3}, "distill.teacher")],
)
def test_bad_distill_options_name_the_key(options, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        DistillSpec(**{"teacher": "a/run", **options})


def test_an_unknown_teacher_precision_is_named_before_the_teacher_is_looked_for():
    with pytest.raises(ConfigError, match=r"distill\.teacher_precision='16': use one of 32-true, bf16-mixed"):
        Distillation(teacher="no/such/run", teacher_precision="16")


def test_a_misspelt_distill_option_is_named_before_anything_is_built():
    cfg = compose_config("train", ["distill=kd", "distill.teacher=a/run", "+distill.temprature=2", "paths.output_dir=out"])
    with pytest.raises(ConfigError, match=r"distill\.temprature is not an option of Distillation; options: \['teacher', 'alpha', 'temperature', 'augment', 'teacher_precision'\]"):
        check_config(cfg)


def test_teacher_logits_travel_with_their_examples_through_collate_and_device_moves():
    encoded = EncodedTexts(np.array([1, 2, 3, 4, 5, 6], np.int32), np.array([0, 1, 3, 6]), np.array([0, 1, 2]))
    logits = np.arange(9, dtype=np.float32).reshape(3, 3)
    dataset = EncodedDataset(encoded, {LOGITS_KEY: logits})
    batch = collate([dataset[i] for i in range(3)], sort_by_length=True)  # longest first: examples 2, 1, 0
    assert batch.labels.tolist() == [2, 1, 0]
    assert batch.extras[LOGITS_KEY].tolist() == logits[[2, 1, 0]].tolist()
    moved = move_data_to_device(batch, torch.device("cpu"))
    assert torch.equal(moved.extras[LOGITS_KEY], batch.extras[LOGITS_KEY])
    assert move_data_to_device(collate([EncodedDataset(encoded)[0]]), torch.device("cpu")).extras == {}
    with pytest.raises(ValueError, match="2 rows of teacher_logits for 3 examples"):
        EncodedDataset(encoded, {LOGITS_KEY: logits[:2]})


def draws() -> tuple[list[float], float, float]:
    return torch.rand(3).tolist(), random.random(), float(np.random.rand())


def test_building_the_teacher_leaves_the_random_state_as_it_was():
    def seed_all() -> None:
        torch.manual_seed(1)
        random.seed(1)
        np.random.seed(1)

    seed_all()
    expected = draws()
    seed_all()
    with untouched_random_state():
        torch.nn.Linear(50, 50)  # weight init draws from the global generator
        draws()
    assert draws() == expected


# --- the real CLI (slow): a tiny teacher, students distilled from it ----------------------------------


STUDENT_ARGS = ("textclass-train", "trainer.max_epochs=2", "data.batch_size=4", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false")


def state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def losses(run: Path) -> list[tuple[str, str]]:
    """(train_loss, val_loss) of each epoch, as history.csv writes them."""
    rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    header = rows[0]
    return [(row[header.index("train_loss")], row[header.index("val_loss")]) for row in rows[1:]]


def cached_logits(cache: Path) -> list[Path]:
    return sorted(cache.glob("teacher-*/teacher_logits.npy"))


@pytest.mark.slow
def test_alpha_one_equals_plain_training_and_the_teacher_logits_are_cached(tiny_run: TinyRun, tmp_path):
    env = cli_env(tiny_run.data, tmp_path)  # the teacher's own data: the same splits
    teacher = str(tiny_run.run)
    plain, alpha_one = in_parallel(
        lambda: run_ok([*STUDENT_ARGS, "hydra.run.dir=plain"], cwd=tmp_path, env=env),
        lambda: run_ok([*STUDENT_ARGS, "hydra.run.dir=alpha_one", "distill=kd", f"distill.teacher={teacher}", "distill.alpha=1"], cwd=tmp_path, env=env),
    )
    assert "computed from" in alpha_one.stderr + alpha_one.stdout
    plain_state, alpha_one_state = state(tmp_path / "plain"), state(tmp_path / "alpha_one")
    assert plain_state.keys() == alpha_one_state.keys()
    for name in plain_state:
        assert torch.equal(plain_state[name], alpha_one_state[name]), name
    plain_metrics = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    alpha_one_metrics = json.loads((tmp_path / "alpha_one" / "metrics.json").read_text())
    for key in ("train/loss_epoch", "train/acc", "val/loss", "test/acc", "test/loss"):
        assert alpha_one_metrics[key] == plain_metrics[key], key
    # every epoch's training loss, not only the last
    assert losses(tmp_path / "alpha_one") == losses(tmp_path / "plain")

    # written once: the teacher's logits (its selected checkpoint) of the 30 training headlines
    (cache_file,) = cached_logits(tmp_path / "cache")
    from textclass.training.checkpoint import load_run

    titles = [title for _, title in NEWS_ROWS] * 3
    expected = load_run(teacher_checkpoint(teacher), run_dir=tiny_run.run).logits(titles).numpy()
    np.testing.assert_allclose(np.load(cache_file), expected, rtol=1e-5, atol=1e-6)
    mtime = cache_file.stat().st_mtime_ns

    # reused: a student on the teacher alone does not compute them again, and trains differently
    # (the key before distillation became a plug-in, model.distill.*, still works, with a note)
    teacher_only = run_ok([*STUDENT_ARGS, "hydra.run.dir=teacher_only", f"model.distill.teacher={teacher}", "model.distill.alpha=0"], cwd=tmp_path, env=env)
    log = teacher_only.stderr + teacher_only.stdout
    assert f"note: model.distill.teacher={teacher} is distill.teacher={teacher} now" in teacher_only.stderr
    assert "loaded from the cache" in log and "computed from" not in log, log[-3000:]
    assert cached_logits(tmp_path / "cache") == [cache_file] and cache_file.stat().st_mtime_ns == mtime
    assert not torch.equal(state(tmp_path / "teacher_only")["model.head.weight"], plain_state["model.head.weight"])


def error_line(result) -> str:
    assert result.returncode == 2, failed_run(result)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.mark.slow
def test_a_teacher_of_other_splits_or_classes_is_one_error_line(tiny_run: TinyRun, tmp_path):
    teacher = f"distill.teacher={tiny_run.run}"
    other_data = write_tiny_data(tmp_path / "other")
    write_tsv(other_data / "news" / "train.tsv", "category\ttitle", NEWS_ROWS * 2)  # other training examples
    runs = [
        ("folds", tiny_run.data, ["data.folds=2", "data.fold=0"]),
        ("files", other_data, []),
        ("classes", tiny_run.data, ["data.dataset.labels=[t,b,e,m]"]),
    ]
    results = in_parallel(
        *[lambda d=d, extra=extra, name=name: run_cli([*STUDENT_ARGS, f"hydra.run.dir={name}", teacher, *extra], cwd=tmp_path, env=cli_env(d, tmp_path))
          for name, d, extra in runs]
    )
    folds, files, classes = map(error_line, results)
    for message in (folds, files):
        assert "the teacher was trained on other splits than this run" in message and "valid or test examples" in message, message
    assert "data.folds: teacher None, this run 2" in folds, folds
    assert "data.dataset.train (content)" in files, files
    assert "the teacher predicts the classes ['b', 't', 'e', 'm'], this run has ['t', 'b', 'e', 'm']" in classes, classes


@pytest.mark.slow
def test_a_bert_run_is_a_teacher(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    env = cli_env(data, tmp_path)
    common = ("trainer.max_epochs=1", "data.batch_size=8", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "predictions=false")
    run_ok(["textclass-train", "model=bert", "hydra.run.dir=bert", *common], cwd=tmp_path, env=env)
    run_ok(["textclass-train", "hydra.run.dir=student", "distill=kd", f"distill.teacher={tmp_path / 'bert'}", *common], cwd=tmp_path, env=env)
    (cache_file,) = cached_logits(tmp_path / "cache")
    logits = np.load(cache_file)
    assert logits.shape == (len(NEWS_ROWS) * 3, 4) and np.isfinite(logits).all()
    assert "test/acc" in json.loads((tmp_path / "student" / "metrics.json").read_text())
    # under bfloat16 autocast: its own cache entry, the same logits to within bfloat16's precision
    run_ok(["textclass-train", "hydra.run.dir=student_bf16", "distill=kd", f"distill.teacher={tmp_path / 'bert'}",
            "distill.teacher_precision=bf16-mixed", *common], cwd=tmp_path, env=env)
    (bf16_file,) = set(cached_logits(tmp_path / "cache")) - {cache_file}
    bf16 = np.load(bf16_file)
    assert bf16.shape == logits.shape and 0 < np.abs(bf16 - logits).max() < 0.1


# --- the augmented transfer set (Tang et al. 2019) ------------------------------------------------

UNK = 1


def sentences(*rows: list[int]) -> EncodedTexts:
    return EncodedTexts.from_encoding(Encoding.from_lists(rows), np.zeros(len(rows), dtype=np.int64))


def test_nearest_neighbours_by_cosine_never_the_word_itself():
    vectors = np.array([[0, 0], [1, 0], [1, 0.1], [0, 1], [-1, 0], [0.9, 0.0]], dtype=np.float32)
    found = nearest_neighbours(vectors, np.array([1, 2, 3, 4, 5]), k=2)
    assert found.shape == (5, 2)
    assert set(found[0]) == {2, 5}  # word 1: the two vectors along it, not itself
    assert 3 not in found[0] and 4 not in found[0]
    assert all(word not in row for word, row in zip([1, 2, 3, 4, 5], found))


def test_each_operation_of_the_augmentation_alone():
    train = sentences([2, 3, 4, 5, 6, 7, 8], [3, UNK])
    words = [["w2", "w3", "w4", "w5", "w6", "w7", "w8"], ["w3", "rare"]]  # "rare": <unk> to the student
    vocabulary = ["<pad>", "<unk>", *(f"v{i}" for i in range(2, 10))]
    vectors = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)

    def run(**options) -> list:
        return augment(train, words, AugmentSpec(**options), UNK, vectors, vocabulary, special=(0,))

    for copy in run(copies=3, mask=0.5, replace=0, ngram=0):  # positions kept, some words masked
        original = train.ids[:7] if len(copy.ids) == 7 else train.ids[7:]
        kept = copy.ids != UNK
        assert kept.any() and np.array_equal(copy.ids[kept], original[kept])
        # the teacher reads None where the copy masked, the word itself where it kept one
        assert all(w is None or w in words[0] + words[1] for w in copy.words)
    replaced = run(copies=2, mask=0, replace=1.0, ngram=0, neighbours=2)
    assert len(replaced) == 4
    table = dict(zip(range(2, 9), nearest_neighbours(vectors, np.arange(2, 9), 2)))
    for copy in replaced:  # every known word one of its two nearest neighbours; <unk> stays, read as "rare"
        original = train.ids[:7] if len(copy.ids) == 7 else train.ids[7:]
        for old, new, word in zip(original.tolist(), copy.ids.tolist(), copy.words):
            assert (new == UNK and word == "rare") if old == UNK else (new in table[old] and word == vocabulary[new])
    cut = run(copies=20, mask=0, replace=0, ngram=1.0)
    text = " ".join(words[0])
    for copy in cut:  # a contiguous piece of 1 to 5 words, read as the sentence's own words
        assert 1 <= len(copy.ids) <= 5 and " ".join(copy.words) in text + " " + " ".join(words[1])
    assert [c.ids.tolist() for c in run(copies=20, mask=0, replace=0, ngram=1.0)] == [c.ids.tolist() for c in cut]  # seeded
    assert run(copies=3, mask=1.0, replace=0, ngram=0) == []  # all <unk>: nothing usable


def test_only_pretrained_words_are_replaced_so_every_run_seed_gets_the_same_copies():
    """Rows without a pretrained vector are drawn by the run's seed: they take no part in replacement,
    so two seeds' embedding matrices give the same transfer set (one teacher labelling for a sweep)."""
    train = sentences([2, 3, 4, 5, 6, 7, 8], [3, 9, 4])
    words = [[f"w{i}" for i in range(2, 9)], ["w3", "w9", "w4"]]
    vocabulary = ["<pad>", "<unk>", *(f"v{i}" for i in range(2, 10))]
    pretrained = np.array([2, 3, 4, 5, 6])  # 7, 8, 9: random rows
    spec = AugmentSpec(copies=10, mask=0, replace=1.0, ngram=0, neighbours=2)
    made = []
    for run_seed in (1, 2):
        vectors = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
        vectors[7:] = np.random.default_rng(run_seed).normal(size=(3, 4))
        made.append([c.ids.tolist() for c in augment(train, words, spec, UNK, vectors, vocabulary, special=(0,), pretrained=pretrained)])
    assert made[0] == made[1] and len(made[0]) == 20
    for copy in made[0]:
        original = [2, 3, 4, 5, 6, 7, 8] if len(copy) == 7 else [3, 9, 4]
        assert all(new == old for old, new in zip(original, copy) if old not in pretrained)  # kept as they were
        assert all(new in pretrained for old, new in zip(original, copy) if old in pretrained)  # replaced among them


@pytest.mark.parametrize(
    "options, key",
    [({"copies": -1}, "distill.augment.copies"), ({"mask": 1.5}, "distill.augment.mask"), ({"mask": 0.6, "replace": 0.6}, "mask \\+ replace"),
     ({"neighbours": 0}, "distill.augment.neighbours")],
)
def test_bad_augmentation_options_name_the_key(options, key):
    with pytest.raises(ConfigError, match=key):
        AugmentSpec(**options)


@pytest.mark.slow
def test_an_augmented_transfer_set_joins_the_training_examples(tiny_run: TinyRun, tmp_path):
    """The teacher labels the copies (logits cached), they train with the 30 headlines, a setting
    that leaves no usable copy is one error line, and so is a vocabulary without <unk>, before the
    teacher labels anything."""
    env = cli_env(tiny_run.data, tmp_path)
    teacher = ["distill=kd", f"distill.teacher={tiny_run.run}"]
    augmented, nothing_left, no_unk = in_parallel(
        lambda: run_ok([*STUDENT_ARGS, "hydra.run.dir=augmented", *teacher, "distill.augment.copies=3"], cwd=tmp_path, env=env),
        lambda: run_cli([*STUDENT_ARGS, "hydra.run.dir=none", *teacher, "distill.augment.copies=2", "distill.augment.mask=1.0",
                         "distill.augment.replace=0"], cwd=tmp_path, env=env),
        lambda: run_cli([*STUDENT_ARGS, "hydra.run.dir=no_unk", *teacher, "distill.augment.copies=2", "data.vocab.drop_unknown=true"],
                        cwd=tmp_path, env=env),
    )
    assert "needs a student with word tokenization and <unk> in its vocabulary" in error_line(no_unk)
    assert "teacher logits of" not in no_unk.stdout + no_unk.stderr
    log = augmented.stderr + augmented.stdout
    made = int(re.search(r"augmented transfer set: (\d+) sentences from 30 training sentences", log)[1])
    assert 30 < made <= 90, log[-3000:]
    metrics = json.loads((tmp_path / "augmented" / "metrics.json").read_text())
    assert metrics["train/examples"] == 30 + made
    assert len(cached_logits(tmp_path / "cache")) == 2  # the training set's and the transfer set's
    assert "made no usable sentence from the 30 training sentences" in error_line(nothing_left)
