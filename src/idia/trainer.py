"""Train CLIP with open_clip's own trainer (``open_clip_train.main``) and export the result.

``python -m idia.trainer ARGS`` is ``python -m open_clip_train.main ARGS`` after making
torchvision importable (see ``idia.compat``); torchrun launches it the same way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from idia.compat import ensure_torchvision, import_open_clip
from idia.provenance import sha256_file


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
) -> list[str]:
    """The command line of open_clip's trainer for webdataset shards on local disk.

    ``model`` is an open_clip model name (``RN50``) or ``local-dir:DIR`` (see :func:`model_arg`).
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
        "--save-most-recent",
        "--delete-previous-checkpoint",
        "--resume", "latest",
        "--zeroshot-frequency", "0",
        "--report-to", "",
        "--log-every-n-steps", "10",
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


def run_training(
    args: list[str], gpus: int, log_path: str | Path, threads: int = 0, nodes: int = 1
) -> float:
    """Run the trainer in a child process, its output appended to ``log_path``; return seconds.

    ``threads`` caps torch's CPU threads (0: torch's default); more threads than the cores a job
    was given makes CPU training several times slower, not faster.
    """
    env = dict(os.environ)
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.monotonic()
    with open(log_path, "a") as log:
        command = launcher(gpus, nodes) + args
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"open_clip training failed (exit {result.returncode}); see {log_path}. "
            "Re-running the rule resumes from the latest epoch checkpoint."
        )
    return time.monotonic() - start


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

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
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


def seed_sample_shuffle(argv: list[str]) -> None:
    """Seed the trainer's sample shuffle from ``--seed``.

    open_clip's webdataset pipeline shuffles samples with ``webdataset.shuffle`` and no RNG, and
    webdataset then seeds one from the clock and the process id: two runs of the same config see
    the samples in different orders and train different models. Handing the stage a seeded RNG
    keeps everything else of the trainer as it is.
    """
    import random

    import webdataset

    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 0
    unseeded = webdataset.shuffle

    def seeded(*args, **kwargs):
        kwargs.setdefault("rng", random.Random(seed))
        return unseeded(*args, **kwargs)

    webdataset.shuffle = seeded


if __name__ == "__main__":
    ensure_torchvision()
    seed_sample_shuffle(sys.argv[1:])
    from open_clip_train.main import main

    main(sys.argv[1:])
