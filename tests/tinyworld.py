"""Running the workflow on the tiny world (tests/config/tiny.yaml) from a test: shared by the
end-to-end tests (test_workflow.py) and the fault-injection suite (test_faults.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = ROOT / "tests/config/tiny.yaml"
ENV = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1")


def command(workdir: Path, *args: str, configfile: Path = TINY, root: Path = ROOT) -> list[str]:
    """The Snakemake command line of the checkout at ``root`` on ``workdir``."""
    return [*SNAKEMAKE, "--snakefile", str(root / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), "--cores", "2", *args]  # fmt: skip


def snakemake(
    workdir: Path, *args: str, check: bool = True, configfile: Path = TINY, root: Path = ROOT
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command(workdir, *args, configfile=configfile, root=root),
        capture_output=True, text=True, env=ENV, cwd=workdir,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{result.stdout[-4000:]}\n"
                             f"{result.stderr[-6000:]}")  # fmt: skip
    return result


def job_counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Jobs per rule that a dry run plans (from its job-count table)."""
    rules, table = {}, False
    for line in (result.stdout + result.stderr).splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
            continue
        if table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            rules[parts[0]] = int(parts[1])
        elif table and parts and parts[0] == "total":
            break
    return rules


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    return set(job_counts(result))
