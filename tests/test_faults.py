"""Fault injection on the tiny world: a run killed in every way a machine or a person kills it
(SIGTERM or SIGKILL, to Snakemake alone or to its whole process group, while photos download or
while the CLIP trains), a config change with a training job that fails and then is interrupted,
and a second checkout of the code at another path. After each, plain reruns must end with
nothing left to do and with the attack's outputs byte for byte those of an uninterrupted run of
the final config; a lock that needs a manual step is named in the message.

SLURM's semantics are the model for "the machine stops the job": SIGTERM to every process of
the job, then SIGKILL to whatever is left after a grace time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from tinyworld import ENV, ROOT, TINY, command, job_counts, planned_rules, snakemake

# Outputs an interrupted run must reproduce byte for byte: downloads, the search, the attack,
# the statistics, track C from the face filter to the injected counts and their attack.
SAME_BYTES = (
    "download/part-00000/00000.tar", "identities/download/00000/00000.tar",
    "identities/report.csv", "search/counts.parquet", "pairs/pairs.parquet",
    "attack/tiny/scores.parquet", "attack/tiny/metrics.parquet", "attack/summary.csv",
    "stats/tiny/persons.csv", "faces/presence.csv", "inject/cohort.csv",
    "inject/n2/counts.parquet", "attack/c-n2/scores.parquet", "faces/classifier/classifier.pt",
)  # fmt: skip
GRACE = 30  # seconds between SIGTERM and SIGKILL, as SLURM's KillWait


def _start(workdir: Path, configfile: Path = TINY, root: Path = ROOT) -> subprocess.Popen:
    """Snakemake on ``workdir`` in a process group of its own (what a batch system kills)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command(workdir, configfile=configfile, root=root), env=ENV, cwd=workdir,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _wait_for(proc: subprocess.Popen, ready: Callable[[], bool], what: str, timeout=900) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.2)


def _jobs(workdir: Path, script: str = "") -> list[psutil.Process]:
    """The workflow's job processes on ``workdir`` (jobs run there), those of ``script`` only
    when it is given; Snakemake itself is not one of them."""
    found = []
    for proc in psutil.process_iter(["cwd", "cmdline", "name"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if proc.info["cwd"] != str(workdir) or "-m snakemake" in cmdline:
            continue
        if script in cmdline and (not script or proc.info["name"] not in ("bash", "sh")):
            found.append(proc)  # with a script: its Python, not the shell that waits for it
    return found


def _stop(proc: subprocess.Popen, sig: int, whole_group: bool) -> None:
    """Send ``sig`` to Snakemake alone or to its whole group; what still runs after the grace
    time gets SIGKILL (Snakemake waits for running jobs, and a job it started as the signal
    came never got it)."""
    if whole_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=GRACE if whole_group else 600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=GRACE)


def _unlock_if_locked(workdir: Path, **kwargs) -> None:
    """A Snakemake killed with SIGKILL leaves its lock: the next run must name the way out."""
    if any((workdir / ".snakemake/locks").glob("*")):
        locked = snakemake(workdir, check=False, **kwargs)
        assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
        snakemake(workdir, "--unlock", **kwargs)


def _finish(workdir: Path, **kwargs) -> None:
    """Plain reruns end the run, after which nothing is stale and nothing is left to do."""
    snakemake(workdir, **kwargs)
    assert planned_rules(snakemake(workdir, "-n", **kwargs)) == set()


def _assert_same_bytes(first: Path, second: Path) -> None:
    for path in SAME_BYTES:
        a, b = first / "results" / path, second / "results" / path
        assert a.read_bytes() == b.read_bytes(), path
    one, two = (np.load(d / "results/attack/tiny/predictions.npz") for d in (first, second))
    for key in ("pred", "rank", "margin"):
        np.testing.assert_array_equal(one[key], two[key])
    cards = [json.loads((d / "results/models/tiny/card.json").read_text())
             for d in (first, second)]  # fmt: skip
    assert cards[0]["data_manifest_sha256"] == cards[1]["data_manifest_sha256"]


def _all_inputs(dry_run: subprocess.CompletedProcess) -> set[str]:
    """The input files of the `all` job in a dry run's job listing."""
    lines = dry_run.stdout.splitlines()
    header = ("rule all:", "localrule all:")
    start = next(i for i, line in enumerate(lines) if line.strip() in header)
    listed = next(line for line in lines[start:] if line.strip().startswith("input:"))
    return set(listed.split(":", 1)[1].strip().split(", "))


@pytest.mark.parametrize("configfile", [TINY, ROOT / "config/config.yaml"], ids=["tiny", "default"])
def test_every_file_a_job_reads_is_requested_so_losing_it_reruns_its_consumers(
    configfile: Path, tmp_path: Path
):
    """Snakemake replans a missing file only when a requested job needs it: `all` requests
    every output of its jobs (a failed job's deleted outputs reach its consumers), and asking
    for them adds no job the final targets did not need."""
    summary = snakemake(tmp_path, "--summary", configfile=configfile).stdout.splitlines()
    produced = {line.split("\t")[0] for line in summary[1:] if line.strip()}
    plan = snakemake(tmp_path, "-n", configfile=configfile)
    assert produced - _all_inputs(plan) == set()
    final = ["figures", "results/attack/summary.csv", "results/stats/summary.csv",
             "results/identities/report.csv", "results/world/haar.json",
             "results/search/truth_check.json", "results/inject/summary.csv",
             "results/faces/filter.json", "results/utility/utility.csv"]  # fmt: skip
    needed = job_counts(snakemake(tmp_path, "-n", *final, configfile=configfile))
    needed.pop("figures")
    assert job_counts(plan) == dict(needed, all=1)


def test_a_job_ends_when_the_snakemake_that_started_it_is_killed(tmp_path: Path):
    """SIGKILL leaves a job running with nothing to tell it; idia.smk.end_with_workflow ends
    it, and every process it started, so that it cannot write what a rerun writes again."""
    workflow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    job_code = (
        "import subprocess, sys, time\n"
        "from idia.smk import end_with_workflow\n"
        "end_with_workflow(poll=0.1)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = dict(os.environ, IDIA_WORKFLOW_PID=str(workflow.pid))
    job = subprocess.Popen([sys.executable, "-c", job_code], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    child = psutil.Process(int(job.stdout.readline()))
    try:
        assert job.poll() is None  # the workflow lives: the job goes on
        workflow.kill()
        workflow.wait()
        assert job.wait(timeout=10) == 1
        assert "has ended: stopping the job" in job.stderr.read()
        child.wait(timeout=10)  # the job's own children end with it
    finally:
        for proc in (workflow, job):
            proc.kill()
        if child.is_running():
            child.kill()


@pytest.mark.e2e
def test_the_whole_group_killed_while_downloading_then_training_resumes_to_the_same_bytes(
    tiny_run: Path, tmp_path: Path
):
    """The machine stops the job: SIGTERM to the whole process group while photos download,
    then SIGKILL to the whole group while the CLIP trains."""
    run = _start(tmp_path)
    _wait_for(run, lambda: any(tmp_path.glob("logs/identities/download/*.log")), "download")
    _stop(run, signal.SIGTERM, whole_group=True)
    _unlock_if_locked(tmp_path)
    run = _start(tmp_path)
    _wait_for(run, lambda: bool(_jobs(tmp_path, "train.py")), "training job")
    _stop(run, signal.SIGKILL, whole_group=True)
    _unlock_if_locked(tmp_path)
    _finish(tmp_path)
    _assert_same_bytes(tiny_run, tmp_path)


@pytest.mark.e2e
def test_snakemake_alone_killed_in_a_second_checkout_resumes_to_the_same_bytes(
    tiny_run: Path, tmp_path: Path
):
    """A person kills Snakemake itself: SIGKILL while photos download (its jobs must end with
    it), then SIGTERM while the CLIP trains (it lets the running job finish). The code runs from
    a second checkout at another path: same commit, same config, same bytes as the first."""
    checkout, work = tmp_path / "checkout", tmp_path / "work"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    run = _start(work, root=checkout)
    _wait_for(run, lambda: bool(_jobs(work, "download.py")), "download job")
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 20
    while _jobs(work) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _jobs(work), "jobs outlived the Snakemake that started them"
    _unlock_if_locked(work, root=checkout)
    run = _start(work, root=checkout)
    _wait_for(run, lambda: bool(_jobs(work, "train.py")), "training job")
    _stop(run, signal.SIGTERM, whole_group=False)
    assert (work / "results/models/tiny/card.json").exists()  # the running job was finished
    _finish(work, root=checkout)
    _assert_same_bytes(tiny_run, work)


@pytest.mark.e2e
def test_a_config_change_then_a_failed_and_an_interrupted_training_reruns_its_consumers(
    tiny_run: Path, tmp_path: Path
):
    """train.epochs changes; the training job fails (its process is killed), then the next run
    is interrupted while it trains. No run may call the old model's attack up to date, and the
    end result is that of an uninterrupted run of the changed config."""
    config = yaml.safe_load(TINY.read_text())
    config["models"]["tiny"]["train"]["epochs"] += 1
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False))
    reference, work = tmp_path / "reference", tmp_path / "work"
    for copy in (reference, work):
        shutil.copytree(tiny_run, copy, symlinks=True)
    snakemake(reference, configfile=changed)

    run = _start(work, configfile=changed)
    _wait_for(run, lambda: bool(_jobs(work, "train.py")), "training job")
    for job in _jobs(work, "train.py"):
        job.kill()  # the training job fails; Snakemake stops after the jobs that run
    assert run.wait(timeout=600) != 0
    stale = planned_rules(snakemake(work, "-n", configfile=changed))
    assert {"train_clip", "predict", "sweep", "attack_summary"} <= stale, stale
    run = _start(work, configfile=changed)
    _wait_for(run, lambda: bool(_jobs(work, "train.py")), "training job")
    _stop(run, signal.SIGTERM, whole_group=True)
    _unlock_if_locked(work, configfile=changed)
    _finish(work, configfile=changed)
    _assert_same_bytes(reference, work)
    weights = "results/models/tiny/open_clip_model.safetensors"
    assert (work / weights).read_bytes() == (reference / weights).read_bytes()
    assert (work / weights).read_bytes() != (tiny_run / weights).read_bytes()
