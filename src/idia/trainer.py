"""Train CLIP with open_clip's own trainer (``open_clip_train.main``) and export the result.

``python -m idia.trainer ARGS`` is ``python -m open_clip_train.main ARGS`` after making
torchvision importable (see ``idia.compat``); torchrun launches it the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from idia.compat import ensure_torchvision, import_open_clip
from idia.provenance import sha256_file

log = logging.getLogger(__name__)


def trainer_args(
    *,
    shards: list[str],
    num_samples: int,
    model: str,
    logs: str,
    name: str,
    epochs: int,
    batch_size: int,
    lr: float,
    wd: float,
    warmup: int,
    seed: int,
    workers: int,
    precision: str,
    device: str,
    torchcompile: bool = False,
) -> list[str]:
    """The command line of open_clip's trainer for webdataset shards on local disk.

    ``model`` is an open_clip model name (``RN50``) or ``local-dir:DIR`` (see :func:`model_arg`).
    One full checkpoint per epoch, the previous one deleted once the next is written, and
    ``--resume latest`` picking it up: a rerun continues the run named ``name`` (see
    :func:`run_id` and :func:`prepare_resume`). No ``--save-most-recent``: its
    ``epoch_latest.pt`` would be a second full copy of the same state. ``torchcompile`` adds
    open_clip's ``--torchcompile`` (``torch.compile`` of the model; on a GPU, after a compile
    of a minute or two, faster steps); left out when off, so that run ids stay as they were.
    """
    if not shards:
        raise ValueError("no training shards given")
    return [
        "--train-data", "::".join(shards),
        "--train-num-samples", str(num_samples),
        "--dataset-type", "webdataset",
        "--model", model,
        "--logs", logs,
        "--name", name,
        "--epochs", str(epochs),
        "--batch-size", str(batch_size),
        "--lr", str(lr),
        "--wd", str(wd),
        "--warmup", str(warmup),
        "--seed", str(seed),
        "--workers", str(workers),
        "--precision", precision,
        "--device", device,
        "--save-frequency", "1",
        "--delete-previous-checkpoint",
        "--resume", "latest",
        "--zeroshot-frequency", "0",
        "--report-to", "",
        "--log-every-n-steps", "10",
        *(["--torchcompile"] if torchcompile else []),
    ]  # fmt: skip


RDZV_PORT = 29500


def launcher(gpus: int, nodes: int = 1, head: str | None = None) -> list[str]:
    """How to start the trainer: plain python, torchrun over the GPUs of one node, or one
    torchrun per node under ``srun`` (a SLURM job over ``nodes`` nodes).

    Multi-node runs rendezvous at ``head`` (default: this host, the allocation's first node,
    where the job script runs); open_clip's trainer then reads rank and world size from torchrun.
    """
    if nodes > 1:
        if gpus < 1:
            raise ValueError(f"a {nodes}-node training needs gpus >= 1 per node, got {gpus}")
        head = head or socket.gethostname()
        job = os.environ.get("SLURM_JOB_ID", "idia")
        return ["srun", "--overlap", f"--nodes={nodes}", "--ntasks-per-node=1",
                sys.executable, "-m", "torch.distributed.run", f"--nnodes={nodes}",
                f"--nproc_per_node={gpus}", "--rdzv_backend=c10d",
                f"--rdzv_endpoint={head}:{RDZV_PORT}", f"--rdzv_id={job}",
                "-m", "idia.trainer"]  # fmt: skip
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}",
                "-m", "idia.trainer"]  # fmt: skip
    return [sys.executable, "-m", "idia.trainer"]


def _die_with_parent() -> None:
    """In the trainer's process: get SIGTERM when the job's script dies, even by SIGKILL, so that
    no orphaned trainer goes on writing checkpoints into the run a rerun resumes."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (Snakemake cancelling the job) as SystemExit, so the ``finally`` that stops the
    trainer runs; outside the main thread signals cannot be handled and nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_training(
    args: list[str],
    gpus: int,
    out: TextIO | None = None,
    threads: int = 0,
    nodes: int = 1,
) -> float:
    """Run the trainer in a child process, each line of its output written to ``out`` (default:
    this process's stdout, which ``idia.smk.log_to`` sends to the job's log); return seconds.

    The output passes through this process instead of sharing the log file, so the trainer's
    lines and the script's own land in the order they happened. ``threads`` caps torch's CPU
    threads (0: torch's default); more threads than the cores a job was given makes CPU
    training several times slower, not faster. Interrupted (SIGTERM, Ctrl-C), the trainer is
    stopped too.
    """
    out = out if out is not None else sys.stdout
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    command = launcher(gpus, nodes) + args
    out.write("$ " + " ".join(command) + "\n")
    out.flush()
    start = time.monotonic()
    with _sigterm_raises():
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
        stdout = child.stdout
        try:
            if stdout is None:  # stdout=PIPE always gives a pipe
                raise RuntimeError(f"no output pipe from the trainer {command[0]}")
            for line in stdout:
                out.write(line.decode("utf-8", errors="replace"))
            out.flush()
            returncode = child.wait()
        finally:
            if child.poll() is None:
                out.write(
                    "idia.trainer: interrupted; stopping the trainer (a rerun resumes from the "
                    "latest epoch checkpoint)\n"
                )
                out.flush()
                child.terminate()
                try:
                    child.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            if stdout is not None:
                stdout.close()
    if returncode != 0:
        raise RuntimeError(
            f"open_clip training failed (exit {returncode}); its output is in the job's log. "
            "Re-running the rule resumes from the latest epoch checkpoint of the same run."
        )
    return time.monotonic() - start


# --------------------------------------------------------------------------------------------
# Runs: identity, resume, clean-up
# --------------------------------------------------------------------------------------------

#: Trainer arguments that name where things are, not what is trained: replaced by content.
_WHERE_ARGS = frozenset({"--train-data", "--logs", "--name", "--model"})


def _arg_pairs(args: list[str]) -> list[tuple[str, str | None]]:
    """``(flag, value)`` for a trainer command line; ``value`` None for a bare switch."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(args):
        flag = args[i]
        has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
        pairs.append((flag, args[i + 1] if has_value else None))
        i += 2 if has_value else 1
    return pairs


def run_id(args: list[str], shard_hashes: list[str], config: dict) -> str:
    """The name of a training run, from what defines it: the trainer's settings
    (hyperparameters, seed, sample count, device), the architecture's config *content* and the
    training shards' sha256s in order.

    Paths are left out: Snakemake hands the architecture config from a per-invocation source
    cache, and a moved results folder holds the same data. The same run therefore gets the same
    id on every attempt and resumes its own checkpoints; any change that alters the model
    starts a new run instead of resuming someone else's.
    """
    pairs = _arg_pairs(args)
    model = dict(pairs).get("--model") or ""
    definition = {
        "settings": [(f, v) for f, v in pairs if f not in _WHERE_ARGS],
        "model": model if not model.startswith("local-dir:") else "local-dir",
        "config": config,
        "shards": list(shard_hashes),
    }
    text = json.dumps(definition, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


_EPOCH_FILE = re.compile(r"epoch_(\d+)\.pt")


def checkpoint_epoch(path: str | Path) -> int | None:
    """N of an ``epoch_N.pt`` written to the end (torch's zip format ends with its directory:
    a save cut short by a kill has none); None for anything else."""
    match = _EPOCH_FILE.fullmatch(Path(path).name)
    if match is None or not zipfile.is_zipfile(path):
        return None
    return int(match.group(1))


def prepare_resume(checkpoints: str | Path) -> Path | None:
    """Leave in ``checkpoints`` only the latest complete ``epoch_N.pt`` and return it (None:
    the run starts at epoch 0).

    open_clip's ``--resume latest`` takes the last ``*.pt`` by name, whatever it is: a
    half-written ``epoch_N.pt`` of a killed save, a ``tmp.pt`` or an ``epoch_latest.pt`` would
    make the resume fail or pick the wrong state, so they go first.
    """
    folder = Path(checkpoints)
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file())
    epochs = {p: checkpoint_epoch(p) for p in files}
    complete = {p: epoch for p, epoch in epochs.items() if epoch is not None}
    latest = max(complete, key=complete.__getitem__) if complete else None
    for path in files:
        if path != latest:
            path.unlink()
            why = "incomplete" if epochs[path] is None else "older epoch"
            log.info("removed %s (%s)", path, why)
    return latest


def final_checkpoint(run_dir: str | Path, epochs: int) -> Path:
    """The checkpoint of the last epoch of a finished run; a clear error when it is not there."""
    path = Path(run_dir) / "checkpoints" / f"epoch_{epochs}.pt"
    if checkpoint_epoch(path) != epochs:
        found = sorted(p.name for p in path.parent.glob("*.pt")) if path.parent.is_dir() else []
        raise FileNotFoundError(
            f"the trainer finished without a complete {path} (found: {found or 'nothing'}); "
            f"see the job's log and {Path(run_dir) / 'out.log'}, then rerun the rule"
        )
    return path


def remove_checkpoints(runs: str | Path) -> int:
    """Delete every checkpoint under ``runs`` (each run's ``checkpoints/``) and return the bytes
    freed; the runs' logs stay. Called once a model is exported: the checkpoints, with their
    optimizer state, are three times the model and only serve a resume."""
    freed = 0
    for folder in sorted(Path(runs).glob("*/checkpoints")):
        freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
    return freed


def model_arg(arch: str, arch_dir: str | Path | None) -> str:
    """The trainer's ``--model``: the project's own config folder, or an open_clip built-in."""
    return f"local-dir:{arch_dir}" if arch_dir else arch


def arch_config(arch: str, arch_dir: str | Path | None) -> dict:
    """The open_clip config of an architecture: the project's own file or open_clip's built-in."""
    if arch_dir:
        return json.loads((Path(arch_dir) / "open_clip_config.json").read_text())
    open_clip = import_open_clip()
    config = open_clip.get_model_config(arch)
    if config is None:
        raise ValueError(
            f"unknown architecture {arch!r}: neither workflow/models/{arch}/ nor an open_clip "
            "built-in (see open_clip.list_models())"
        )
    return {"model_cfg": config}


def export_checkpoint(checkpoint: str | Path, config: dict, out_dir: str | Path) -> Path:
    """Write ``out_dir`` as an open_clip ``local-dir:`` model: config + safetensors weights."""
    import torch
    from safetensors.torch import save_file

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    weights = state.get("state_dict", state)
    weights = {k.removeprefix("module."): v.contiguous() for k, v in weights.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    target = out_dir / "open_clip_model.safetensors"
    save_file(weights, str(target))
    return target


def write_card(path: str | Path, card: dict) -> None:
    Path(path).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def shard_manifest(shards: list[str]) -> dict[str, str]:
    return {shard: sha256_file(shard) for shard in shards}


class EpochShuffle:
    """open_clip's sample shuffle, seeded by (seed, epoch, worker, rank) at the start of every
    pass over the data, which also reseeds the RNGs the image augmentations draw from.

    open_clip shuffles samples with ``webdataset.shuffle`` and no RNG (webdataset then seeds one
    from the clock and the process id), and its dataloader workers draw augmentations from RNGs
    that run on across epochs. So two runs of one config trained different models, and a run
    resumed at epoch e saw other samples in other crops than an uninterrupted one. Seeded per
    epoch, epoch e's randomness is the same whether the run started at 0 or resumed at e.
    """

    def __init__(self, bufsize: int, initial: int, seed: int, epoch) -> None:
        self.bufsize, self.initial, self.seed, self.epoch = bufsize, initial, seed, epoch

    def __call__(self, src: Iterator) -> Iterator:
        import random

        import numpy as np
        import torch
        from webdataset.filters import _shuffle

        worker = torch.utils.data.get_worker_info()
        key = [self.seed, self.epoch.get_value(), worker.id if worker else 0]
        key.append(int(os.environ.get("RANK", "0")))
        state = np.random.SeedSequence(key).generate_state(2)
        torch.manual_seed(int(state[0]))
        np.random.seed(int(state[1]))
        random.seed(int(state[0]))
        return _shuffle(src, self.bufsize, self.initial, random.Random(int(state[1])))


def seed_every_epoch(argv: list[str]) -> None:
    """Make open_clip's sample order and augmentations a function of ``--seed`` and the epoch
    (see :class:`EpochShuffle`), leaving everything else of the trainer as it is."""
    import webdataset
    from open_clip_train import data

    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    epochs = []  # the epoch counter open_clip shares with its dataloader workers
    made = data.SharedEpoch.__init__

    def remember(self, epoch: int = 0) -> None:
        made(self, epoch)
        epochs.append(self)

    def shuffle(bufsize: int = 1000, initial: int = 100, **_) -> EpochShuffle:
        return EpochShuffle(bufsize, initial, seed, epochs[-1])

    data.SharedEpoch.__init__ = remember
    webdataset.shuffle = shuffle


if __name__ == "__main__":
    ensure_torchvision()
    seed_every_epoch(sys.argv[1:])
    from open_clip_train.main import main

    main(sys.argv[1:])


def training_samples(stats: list[str | Path]) -> int:
    """Samples in the training shards, from their img2dataset ``*_stats.json`` files: the
    trainer needs the count up front (``--train-num-samples``)."""
    return sum(json.loads(Path(p).read_text())["successes"] for p in stats)


def model_card(
    *,
    model: str,
    arch: str,
    arch_config: dict,
    train: dict,
    device: str,
    samples: int,
    manifest: dict[str, str],
    run: str,
    resumed_from_epoch: int | None,
    seconds: float,
) -> dict:
    """The JSON card a trained model carries: what it is, what it saw (each shard's sha256 and
    one hash of them all, so that two cards compare by one value) and how the run went."""
    return {
        "model": model,
        "arch": arch,
        "arch_config": arch_config,
        "train": train,
        "device": device,
        "samples": samples,
        "shards": manifest,
        "data_manifest_sha256": hashlib.sha256(
            json.dumps(manifest, sort_keys=True).encode()
        ).hexdigest(),
        "run_id": run,
        "resumed_from_epoch": resumed_from_epoch,
        "train_seconds": round(seconds, 1),
        "trainer": "open_clip_train.main",
    }


def train_model(
    *,
    model: str,
    arch: str,
    arch_dir: str | Path | None,
    train: dict,
    shards: list[str],
    stats: list[str | Path],
    runs: str | Path,
    weights: str | Path,
    card: str | Path,
    threads: int,
    keep_log: Callable[[Path], None] | None = None,
) -> dict:
    """Train ``model`` with open_clip's trainer, export it as a ``local-dir:`` model next to
    ``weights`` and write its ``card``; return the card.

    ``train`` is the model's validated ``train:`` section (the schema fills its defaults). The
    run is named by what defines it (``run_id``): a rerun of the same setting resumes its own
    latest complete checkpoint, a changed setting starts afresh. ``keep_log(path)``, when given,
    also copies the job's log into the run's folder.
    """
    from idia.backends import pick_device

    gpus = int(train["gpus"])
    device = "cuda" if gpus > 0 else pick_device("cpu")
    samples = training_samples(stats)
    manifest = shard_manifest(shards)
    config = arch_config(arch, arch_dir)
    args = trainer_args(
        shards=shards,
        num_samples=samples,
        model=model_arg(arch, arch_dir),
        logs=str(runs),
        name="pending",
        epochs=train["epochs"],
        batch_size=train["batch_size"],
        lr=train["lr"],
        wd=train["wd"],
        warmup=train["warmup"],
        seed=train["seed"],
        workers=train["workers"],
        precision=train["precision"],
        device=device,
        torchcompile=train["torchcompile"],
    )
    # A run per content of what defines it: every attempt of the same setting resumes its own
    # checkpoints, a changed one starts afresh instead of resuming someone else's.
    name = run_id(args, list(manifest.values()), config)
    args[args.index("--name") + 1] = name
    run_dir = Path(runs) / name
    if keep_log is not None:
        keep_log(run_dir / "job.log")
    resume = prepare_resume(run_dir / "checkpoints")
    start = checkpoint_epoch(resume) if resume else 0  # read now: the trainer deletes the file
    log.info(
        "training %s on %d samples from %d shards: run %s, %s",
        model,
        samples,
        len(shards),
        name,
        f"resuming after epoch {start} from {resume}" if resume else "from epoch 0",
    )
    seconds = run_training(args, gpus, threads=threads, nodes=int(train["nodes"]))
    checkpoint = final_checkpoint(run_dir, train["epochs"])
    exported = export_checkpoint(checkpoint, config, Path(weights).parent)
    result = model_card(
        model=model,
        arch=arch,
        arch_config=json.loads((exported.parent / "open_clip_config.json").read_text()),
        train=train,
        device=device,
        samples=samples,
        manifest=manifest,
        run=name,
        resumed_from_epoch=start,
        seconds=seconds,
    )
    write_card(card, result)
    if not train["keep_checkpoints"]:
        freed = remove_checkpoints(runs)
        log.info(
            "removed the runs' checkpoints (%.1f MB); train.keep_checkpoints keeps them",
            freed / 1e6,
        )
    log.info("trained %s in %.0f s", model, seconds)
    return result
