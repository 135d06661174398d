"""The seam between Snakemake scripts and the package: logging and small file helpers."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def log_to(path: str | Path) -> None:
    """Send this script's logging, warnings and progress bars to the rule's log file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the script
    sys.stdout = sys.stderr = handle
    logging.basicConfig(
        stream=handle,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)


def finish(snakemake) -> None:
    """The last call of every workflow script: the job's provenance manifests.

    A failure to write them is logged, not raised: the job's results are already complete.
    """
    from idia.provenance import record

    try:
        record(snakemake)
    except Exception:
        logging.getLogger(__name__).exception("provenance: could not write the job's manifests")


def write_json(path: str | Path, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
