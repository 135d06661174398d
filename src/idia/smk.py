"""The seam between Snakemake scripts and the package: logging and small file helpers."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

# Set by the Snakefile to the process id of the Snakemake that parses it (the one that runs jobs)
WORKFLOW_PID = "IDIA_WORKFLOW_PID"


class JobLog(io.TextIOBase):
    """A job's log: every line this script writes, in order, to the rule's log file, and, once
    :meth:`keep` is called, also to a history that outlives the attempt."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # append: a child process writing to the same file is never overwritten
        self._files = [open(self.path, "a", buffering=1, encoding="utf-8")]  # noqa: SIM115

    def write(self, text: str) -> int:
        for handle in self._files:
            handle.write(text)
        return len(text)

    def flush(self) -> None:
        for handle in self._files:
            handle.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._files[0].fileno()

    def keep(self, history: str | Path) -> None:
        """Keep the log across attempts: Snakemake deletes a job's log before each attempt, so a
        retry would lose the output of the attempt that failed. ``history`` collects every
        attempt; its earlier attempts are put at the top of this attempt's log."""
        history = Path(history)
        history.parent.mkdir(parents=True, exist_ok=True)
        self.flush()
        earlier = history.read_text(encoding="utf-8") if history.exists() else ""
        now = self.path.read_text(encoding="utf-8")
        if earlier:
            self.path.write_text(earlier + now, encoding="utf-8")
        handle = open(history, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        handle.write(now)
        self._files.append(handle)


def end_with_workflow(poll: float = 1.0) -> threading.Thread | None:
    """End this job, and every process it started, within ``poll`` seconds of the death of the
    Snakemake process that started it.

    Nothing tells a job that its Snakemake was killed (SIGKILL, the OOM killer): left running, it
    would go on writing the very outputs that the rerun deletes and writes again. A daemon thread
    watches the workflow's process (by id and start time, so a reused id does not fool it).
    Without ``IDIA_WORKFLOW_PID`` (a script run by hand, a test) nothing is watched."""
    import psutil

    pid = os.environ.get(WORKFLOW_PID)
    if not pid:
        return None
    try:
        workflow = psutil.Process(int(pid))
    except psutil.NoSuchProcess:
        workflow = None

    def watch() -> None:
        while workflow is not None and workflow.is_running():
            time.sleep(poll)
        print(
            f"the Snakemake process {pid} that started this job has ended: stopping the job "
            "(its outputs are incomplete; rerun the workflow)",
            file=sys.stderr,
            flush=True,
        )
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        os._exit(1)

    thread = threading.Thread(target=watch, name="idia-end-with-workflow", daemon=True)
    thread.start()
    return thread


def log_to(path: str | Path) -> JobLog:
    """Send this script's logging, warnings and progress bars to the rule's log file (and end
    the job with its Snakemake: :func:`end_with_workflow`)."""
    end_with_workflow()
    stream = JobLog(path)
    sys.stdout = sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    return stream


def finish(snakemake, hashes: Mapping[str | os.PathLike, dict] | None = None) -> None:
    """The last call of every workflow script: the job's provenance manifests.

    ``hashes``: full ``{"bytes", "sha256"}`` the job already computed for some of its files
    (see :func:`idia.provenance.build_manifest`), recorded instead of a partial hash.
    A failure to write them is logged, not raised: the job's results are already complete.
    """
    from idia.provenance import record

    try:
        record(snakemake, hashes=hashes)
    except Exception:
        logging.getLogger(__name__).exception("provenance: could not write the job's manifests")


def write_json(path: str | Path, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
