"""Tests of the script seam: a job's log keeps every line, in order, across attempts."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from idia.smk import log_to


@pytest.fixture
def restore_streams():
    stdout, stderr = sys.stdout, sys.stderr
    yield
    sys.stdout, sys.stderr = stdout, stderr
    logging.basicConfig(stream=stderr, force=True)


def test_job_log_keeps_a_child_output_and_every_attempt_in_order(tmp_path, restore_streams):
    log_file, history = tmp_path / "logs" / "train.log", tmp_path / "run" / "job.log"
    for attempt in (1, 2):
        log_file.unlink(missing_ok=True)  # Snakemake deletes the log before each attempt
        stream = log_to(log_file)
        logging.info("attempt %d starts", attempt)
        stream.keep(history)
        child = [sys.executable, "-c", f"print('child {attempt}')"]
        stream.write(subprocess.run(child, capture_output=True, text=True).stdout)
        logging.info("attempt %d ends", attempt)
        stream.flush()
    lines = [line.split(": ", 1)[-1] for line in log_file.read_text().splitlines()]
    expected = ["attempt 1 starts", "child 1", "attempt 1 ends"]
    expected += ["attempt 2 starts", "child 2", "attempt 2 ends"]
    assert lines == expected
    assert history.read_text() == log_file.read_text()


def test_a_child_writing_to_the_log_file_itself_is_not_overwritten(tmp_path, restore_streams):
    log_file = tmp_path / "job.log"
    stream = log_to(log_file)
    logging.info("before")
    stream.flush()
    subprocess.run([sys.executable, "-c", "print('x' * 200)"], stdout=stream.fileno())
    logging.info("after")
    stream.flush()
    lines = log_file.read_text().splitlines()
    assert [lines[0].endswith("before"), lines[1], lines[2].endswith("after")] == [
        True,
        "x" * 200,
        True,
    ]
