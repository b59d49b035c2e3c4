"""The `textclass_optuna` sweeper (hydra_plugins/textclass_optuna_sweeper/optuna_sweeper.py is the shim Hydra finds, which imports this on first use): a Hydra Sweeper on Optuna's ask-and-tell API: each trial is one Hydra job, its return value the objective.

The study lives in a storage (SQLite in the sweep directory by default), so a sweep that is run
again continues its study up to `n_trials` finished trials, and several sweeper processes on one
storage share the trials. Each job learns its trial through environment variables, for pruning
(`textclass.search.pruning.OptunaPruning`). A job that raises, exits, or returns NaN/inf is a
failed trial; the sweep goes on until more than `max_failure_rate` × `n_trials` trials failed.
"""

import contextlib
import io
import logging
import math
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from textclass.errors import ConfigError
from textclass.run_files import ERROR_LOG
from textclass.search.pruning import PRUNER_ATTR, OptunaPruning, TrialRef
from textclass.search.results import objective_text, write_results
from textclass.search.space import SearchSpace, format_value, parse_override, parse_search_space
from textclass.search.storage import STORAGE_ERRORS, open_storage, shown_url, wait_until_reachable

log = logging.getLogger(__name__)

# trial user attribute of the failed trials this sweeper told; a FAIL without it is a trial whose
# process was killed (failed when its heartbeat stopped): not counted as tried
FAIL_REASON = "textclass.fail_reason"
# failed trials that count as tried: the job raised or exited, or its value was not a finite number
TRIED = ("error", "not finite")
SURPLUS = "surplus"  # asked by two workers at once beyond n_trials, never run
HEARTBEAT_ATTR = "textclass.heartbeat"  # trial user attribute: time.time() of the last "still running"
STORAGE_FILE = "optuna.db"
PRUNING_CALLBACK_KEY = "optuna_pruning"  # callbacks.<key>: the trial's pruning callback
# how long a sweeper that lost its storage (a database server restarting) waits for it to answer again
RECONNECT_S = 120
RECONNECT_POLL_S = 2
# how often a worker with nothing left to ask looks whether the others' last trials have finished
# (they may finish the study or fail): not the whole heartbeat interval, which would idle it that long
WAIT_POLL_S = 1.0


class JobExited(Exception):
    """A job called sys.exit (textclass-train does on bad input, after printing the error)."""


class RaiseInsteadOfExit:
    """The task function, with SystemExit turned into an exception: Hydra records it as a failed job
    instead of letting it end the whole sweep."""

    def __init__(self, task_function: TaskFunction) -> None:
        self.task_function = task_function

    def __call__(self, cfg: DictConfig) -> Any:
        try:
            return self.task_function(cfg)
        except SystemExit as exit_:
            raise JobExited(f"the job exited with code {exit_.code}") from None


@dataclass
class TrialCounts:
    done: int  # COMPLETE, PRUNED, or failed as tried: these count towards n_trials
    failed: int  # failed as tried
    running: int  # RUNNING or WAITING, in any process

    @classmethod
    def of(cls, study: optuna.Study) -> "TrialCounts":
        trials = study.get_trials(deepcopy=False)
        failed = sum(t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get(FAIL_REASON) in TRIED for t in trials)
        finished = sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
        running = sum(t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING) for t in trials)
        return cls(done=finished + failed, failed=failed, running=running)


class OptunaSweeperImpl(Sweeper):
    def __init__(
        self,
        sampler: DictConfig,
        pruner: DictConfig,
        direction: str | Sequence[str],
        n_trials: int,
        n_jobs: int,
        storage: str | None,
        study_name: str | None,
        max_failure_rate: float,
        heartbeat_interval: int,
        params: DictConfig | None,
    ) -> None:
        self.sampler_config = sampler
        self.pruner_config = pruner
        self.directions = [direction] if isinstance(direction, str) else list(direction)
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.storage_url = storage
        self.study_name = study_name
        self.max_failure_rate = max_failure_rate
        self.heartbeat_interval = heartbeat_interval
        self.params = OmegaConf.to_container(params) if params else {}
        self.sampler_exhausted = False  # grid and brute-force samplers end the study themselves

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=RaiseInsteadOfExit(task_function), config=config)
        self.sweep_dir = Path(config.hydra.sweep.dir)
        # what each objective is: the task's optimized_metric (val/loss by default)
        metric = config.get("optimized_metric")
        self.objectives = [str(m) for m in metric] if OmegaConf.is_list(metric) else [str(metric)] if metric else []

    def sweep(self, arguments: list[str]) -> None:
        try:
            self.run_study_reconnecting(arguments)
        except ConfigError as err:
            log.error("%s", err)
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    def run_study_reconnecting(self, arguments: list[str]) -> None:
        """run_study; when the storage drops out (a database server restarting), waits for it to answer
        again and continues the study from what it holds, as a rerun of the command would."""
        while True:
            try:
                return self.run_study(arguments)
            except STORAGE_ERRORS as err:
                shown = shown_url(self.storage_url)
                log.warning("lost the study's storage %s (%s): waiting up to %d s for it to answer again", shown, type(err).__name__, RECONNECT_S)
                if not wait_until_reachable(self.storage_url, RECONNECT_S, RECONNECT_POLL_S):
                    raise ConfigError(
                        f"lost the study's storage {shown} and it did not answer again within {RECONNECT_S} s ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:300]}); the finished trials are kept there: run the same command again to continue the study"
                    ) from None
                log.info("the storage answers again: continuing the study")

    def run_study(self, arguments: list[str]) -> None:
        space = parse_search_space(self.params, arguments)
        if not space.distributions:
            raise ConfigError("the search has no parameter to tune: set hydra.sweeper.params (see conf/hparams_search/) or sweep one on the command line, e.g. 'optimizer.lr=tag(log, interval(1e-4, 1e-1))'")
        self.check_settings()
        study = self.open_study()
        log.info("study %r in %s: %d of %d trials done; searching %s", study.study_name, shown_url(self.storage_url), TrialCounts.of(study).done, self.n_trials, ", ".join(space.distributions))
        while (batch := self.next_batch(study, space)) is not None:
            for run in consecutive_runs(batch):
                self.run_trials(study, space, run)
        counts = TrialCounts.of(study)
        groups_chosen = OmegaConf.to_container(self.config.hydra.runtime.choices)
        groups = set(groups_chosen)
        base = [a for a in arguments if parse_override(a).get_key_element() not in space.distributions]
        # a search file names its experiment in its defaults: best_params.yaml must include it too
        experiment = groups_chosen.get("experiment")
        if experiment and not any(parse_override(a).get_key_element() == "experiment" for a in base):
            base.append(f"experiment={experiment}")
        # the config's constant params belong to the trials' setup; the command line's are in `base`
        fixed = {k: v for k, v in space.fixed_values().items() if k in self.params and not any(parse_override(a).get_key_element() == k for a in base)}
        log.info("%s", write_results(study, self.sweep_dir, groups, base, fixed, space.values, self.objectives))
        if self.too_many_failures(counts):
            raise ConfigError(self.failure_message(counts))

    def check_settings(self) -> None:
        if self.n_trials < 1 or self.n_jobs < 1:
            raise ConfigError(f"hydra.sweeper: n_trials ({self.n_trials}) and n_jobs ({self.n_jobs}) must be at least 1")
        if not 0 <= self.max_failure_rate <= 1:
            raise ConfigError(f"hydra.sweeper.max_failure_rate={self.max_failure_rate}: must be between 0 and 1")
        bad = [d for d in self.directions if d not in ("minimize", "maximize")]
        if bad or not self.directions:
            raise ConfigError(f"hydra.sweeper.direction={self.directions}: each must be minimize or maximize")

    def open_study(self) -> optuna.Study:
        """Creates the study, or loads it to continue: then the sampler's seed moves on by the trials
        already there, so a resumed TPE does not draw its first random points again."""
        self.storage_url = self.storage_url or f"sqlite:///{(self.sweep_dir / STORAGE_FILE).resolve()}"
        self.study_name = self.study_name or str(self.config.hydra.job.name)
        if self.storage_url.startswith("sqlite:///"):
            Path(self.storage_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(self.storage_url)
        existing = previous_trial_count(self.storage, self.study_name)
        sampler_config = OmegaConf.to_container(self.sampler_config)
        if existing and sampler_config.get("seed") is not None:
            sampler_config["seed"] += existing
        study = optuna.create_study(storage=self.storage, study_name=self.study_name, sampler=instantiate(sampler_config), directions=self.directions, load_if_exists=True)
        stored = [d.name.lower() for d in study.directions]
        if stored != self.directions:
            raise ConfigError(f"study {self.study_name!r} in {shown_url(self.storage_url)} has direction {stored}, this sweep asks for {self.directions}: use another hydra.sweeper.study_name")
        study.set_user_attr(PRUNER_ATTR, OmegaConf.to_container(self.pruner_config))
        return study

    def next_batch(self, study: optuna.Study, space: SearchSpace) -> list[optuna.Trial] | None:
        """Up to n_jobs new trials; waits while trials of other processes may still finish the study; None when done."""
        waiting = False
        while not self.sampler_exhausted:
            self.fail_abandoned(study)
            counts = TrialCounts.of(study)
            if self.too_many_failures(counts):
                return None
            todo = min(self.n_jobs, self.n_trials - counts.done - counts.running)
            if todo > 0:
                batch = [study.ask(space.distributions) for _ in range(todo)]
                batch = [t for t in batch if not self.is_surplus(study, t)]
                if batch:
                    return batch
            elif counts.running == 0 or counts.done >= self.n_trials:
                return None
            else:
                if not waiting:
                    log.info("waiting for %d running trial(s) of other processes (or their heartbeat to stop)", counts.running)
                    waiting = True
                threading.Event().wait(min(self.heartbeat_interval, WAIT_POLL_S))
        return None

    def fail_abandoned(self, study: optuna.Study) -> None:
        """Fails RUNNING trials without a heartbeat for 2 × heartbeat_interval: their process was killed.

        Until its first heartbeat a trial counts from its start, so a process killed between asking
        a trial and marking it alive leaves nothing behind either. Not counted as tried.
        """
        now = time.time()
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            last = trial.user_attrs.get(HEARTBEAT_ATTR, trial.datetime_start.timestamp())
            if now - last > 2 * self.heartbeat_interval:
                try:
                    study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                except optuna.exceptions.UpdateFinishedTrialError:  # another process finished it meanwhile
                    continue
                log.warning("trial %d: no heartbeat for %.0f s (its process was stopped): failed, not counted", trial.number, now - last)

    def is_surplus(self, study: optuna.Study, trial: optuna.Trial) -> bool:
        """Another process asked at the same moment and the study already has n_trials before this one."""
        earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
        counts_before = sum(t.state != optuna.trial.TrialState.FAIL or t.user_attrs.get(FAIL_REASON) in TRIED for t in earlier)
        if counts_before < self.n_trials:
            return False
        trial.set_user_attr(FAIL_REASON, SURPLUS)
        tell_state(study, trial, state=optuna.trial.TrialState.FAIL)
        return True

    def run_trials(self, study: optuna.Study, space: SearchSpace, trials: list[optuna.Trial]) -> None:
        """One launch: job numbers are the trial numbers (consecutive), so job dirs are named by trial."""
        pruning = pruning_overrides(self.config.get("callbacks"))
        overrides = [[*space.overrides(t.params), *env_overrides(TrialRef(self.storage_url, study.study_name, t.number)), *pruning] for t in trials]
        for trial in trials:
            log.info("trial %d: %s", trial.number, " ".join(space.overrides(trial.params)[: len(trial.params)]))
        with heartbeat(trials, self.heartbeat_interval):
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0].number)
        for trial, job in zip(trials, returns):
            try:
                self.sampler_exhausted |= tell(study, trial, job, self.directions, self.objectives)
            except optuna.exceptions.UpdateFinishedTrialError:
                log.warning(
                    "trial %d: another process failed it while it ran (no heartbeat for 2 x %d s: the machine was overloaded); "
                    "its result is not stored: raise hydra.sweeper.heartbeat_interval", trial.number, self.heartbeat_interval,
                )

    def too_many_failures(self, counts: TrialCounts) -> bool:
        return counts.failed > self.max_failure_rate * self.n_trials

    def failure_message(self, counts: TrialCounts) -> str:
        return (
            f"search stopped: {counts.failed} of {counts.done} trials failed, more than max_failure_rate={self.max_failure_rate} of n_trials={self.n_trials}; "
            f"each failed job's error is in its {ERROR_LOG} (trials.csv lists them); raise hydra.sweeper.max_failure_rate to go on"
        )


def previous_trial_count(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    try:
        return len(storage.get_all_trials(storage.get_study_id_from_name(study_name), deepcopy=False))
    except KeyError:
        return 0


def consecutive_runs(trials: list[optuna.Trial]) -> Iterator[list[optuna.Trial]]:
    """Trials split where their numbers jump (another process asked in between)."""
    run: list[optuna.Trial] = []
    for trial in trials:
        if run and trial.number != run[-1].number + 1:
            yield run
            run = []
        run.append(trial)
    if run:
        yield run


def pruning_overrides(callbacks: Mapping[str, Any] | None) -> list[str]:
    """The pruning callback in every trial's job, following optimized_metric, unless the search's
    config names one (callbacks.optuna_pruning): runs outside a search never load it."""
    if (callbacks or {}).get(PRUNING_CALLBACK_KEY):
        return []
    return [f"++callbacks.{PRUNING_CALLBACK_KEY}._target_={OptunaPruning.__module__}.{OptunaPruning.__qualname__}",
            f"++callbacks.{PRUNING_CALLBACK_KEY}.monitor=${{optimized_metric}}"]


def env_overrides(ref: TrialRef) -> list[str]:
    return [f"++hydra.job.env_set.{key}={format_value(value)}" for key, value in ref.env().items()]


class heartbeat:  # noqa: N801 - used as a context manager, like a function
    """Marks `trials` as alive (a time stamp in a user attribute) every `interval` seconds while their jobs run."""

    def __init__(self, trials: list[optuna.Trial], interval: int) -> None:
        self.trials, self.interval = trials, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.beat, daemon=True, name="optuna-heartbeat")

    def beat(self) -> None:
        while True:
            try:
                for trial in self.trials:
                    trial.set_user_attr(HEARTBEAT_ATTR, time.time())
            except optuna.exceptions.UpdateFinishedTrialError:  # another process failed a trial whose beat came late
                pass
            except STORAGE_ERRORS as err:  # the database is away for a moment: the next beat tries again
                log.warning("heartbeat of trial(s) %s not stored (%s): trying again in %d s", [t.number for t in self.trials], type(err).__name__, self.interval)
            if self.stop.wait(self.interval):
                return

    def __enter__(self) -> None:
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def tell(study: optuna.Study, trial: optuna.Trial, job: JobReturn, directions: Sequence[str], objectives: Sequence[str] = ()) -> bool:
    """The job's outcome to Optuna: its value(s), PRUNED, or FAIL with the reason kept on the trial.

    Returns True when the sampler has no point left to try (see `tell_state`).
    """
    if job.status != JobStatus.COMPLETED:
        try:
            # a failed job's return_value raises the job's exception, after writing "Error executing
            # job" on stderr, wrong for a pruned trial; a failed one is logged below with its reason
            with contextlib.redirect_stderr(io.StringIO()):
                job.return_value
        except BaseException as raised:
            error = raised
        if isinstance(error, optuna.TrialPruned):
            log.info("trial %d pruned %s", trial.number, error)
            return tell_state(study, trial, state=optuna.trial.TrialState.PRUNED)
        job_dir = Path(job.hydra_cfg.hydra.runtime.output_dir)
        (job_dir / ERROR_LOG).write_text("".join(traceback.format_exception(error)))
        return fail(study, trial, "error", f"{type(error).__name__}: {error} (traceback in {job_dir / ERROR_LOG})")
    n_objectives = len(directions)
    values = job.return_value
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if len(values) != n_objectives or not all(isinstance(v, (int, float)) for v in values):
        return fail(study, trial, "error", f"the job returned {job.return_value!r}, not {n_objectives} number(s): check optimized_metric")
    if not all(math.isfinite(v) for v in values):
        return fail(study, trial, "not finite", f"the job returned {job.return_value!r}")
    log.info("trial %d: %s", trial.number, objective_text(values, objectives, directions))
    return tell_state(study, trial, values=values)


def fail(study: optuna.Study, trial: optuna.Trial, reason: str, message: str) -> bool:
    trial.set_user_attr(FAIL_REASON, reason)
    log.warning("trial %d failed: %s", trial.number, message)
    return tell_state(study, trial, state=optuna.trial.TrialState.FAIL)


def tell_state(study: optuna.Study, trial: optuna.Trial, **outcome: Any) -> bool:
    """study.tell; grid and brute-force samplers call study.stop() once every point has been tried,
    which Optuna allows only inside study.optimize: the trial is already stored, so that ends the search."""
    try:
        study.tell(trial, **outcome)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise
        return True
    return False
