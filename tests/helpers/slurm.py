"""A throwaway one-node Slurm cluster on localhost, for the tests of hydra/launcher=slurm.

    with LocalSlurm.start() as cluster:   # munged, slurmctld and slurmd in a temporary folder, on free ports
        env = cluster.env()               # SLURM_CONF for sbatch, srun, squeue (what submitit calls)
    # the daemons stopped, their folder removed

Debian's packages (`slurmctld slurmd slurm-client munge`, which .ci/setup installs) with a config of
our own: no cgroups (proctrack/linuxproc, task/none), no accounting database. The daemons run as
root, as on a real cluster. `unavailable()` says why no cluster can be started here, or returns None.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._postgres import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scancel", "sinfo")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30

SLURM_CONF = """\
ClusterName=textclass
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge.sock
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def unavailable() -> str | None:
    """Why no throwaway cluster can be started here, or None."""
    missing = [name for name in (*DAEMONS, *CLIENTS) if find(name) is None]
    if missing:
        return f"Slurm not installed ({', '.join(missing)} not found): `apt-get install slurmctld slurmd slurm-client munge` (.ci/setup does)"
    if os.geteuid() != 0:
        return "not root: slurmd runs jobs as their users, so the throwaway cluster needs root"
    return None


def stop_process(pid: int) -> None:
    """SIGTERM, then SIGKILL if it is still there after a few seconds."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 1.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def find(name: str) -> str | None:
    """A Slurm or munge program on PATH or in the sbin folders the daemons live in."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


@dataclass
class LocalSlurm:
    root: Path  # munge key and socket, slurm.conf, state, spool, pid and log files

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    @classmethod
    def start(cls) -> LocalSlurm:
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        cluster = cls(Path(tempfile.mkdtemp(prefix="textclass-slurm-")))
        try:
            cluster._start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start(self) -> None:
        root = self.root
        for folder in ("state", "spool"):
            (root / folder).mkdir()
        key = root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._run(find("munged"), f"--key-file={key}", f"--socket={root}/munge.sock", f"--pid-file={root}/munged.pid",
                  f"--log-file={root}/munged.log", f"--seed-file={root}/munge.seed", "--force")
        host = socket.gethostname().split(".")[0]
        self.conf.write_text(SLURM_CONF.format(host=host, root=root, ctld_port=free_port(), d_port=free_port(), cpus=os.cpu_count() or 1))
        self._run(find("slurmctld"), "-f", str(self.conf))
        self._run(find("slurmd"), "-f", str(self.conf))
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the node registers with the controller, then takes jobs
            state = subprocess.run(["sinfo", "--noheader", "--format=%t"], env={**os.environ, **self.env()}, capture_output=True, text=True)
            if state.returncode == 0 and state.stdout.strip() == "idle":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Slurm node is not idle after {START_TIMEOUT_S} s: sinfo says {state.stdout.strip() or state.stderr.strip()!r}; "
                                   f"logs in {root}")
            time.sleep(0.5)

    def _run(self, *command: str) -> None:
        result = subprocess.run(command, env={**os.environ, **self.env()}, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")

    def stop(self) -> None:
        """Let finishing jobs end (a job's step outlives the result submitit reads), cancel what is
        left, stop the daemons, remove the folder."""
        env = {**os.environ, **self.env()}
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            queue = subprocess.run(["squeue", "--noheader"], env=env, capture_output=True, text=True)
            if queue.returncode != 0 or not queue.stdout.strip():
                break
            time.sleep(0.5)
        subprocess.run(["scancel", "--full", "--user=root"], env=env, capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.root / f"{name}.pid"
            if pid_file.is_file():
                stop_process(int(pid_file.read_text().split()[0]))
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalSlurm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
