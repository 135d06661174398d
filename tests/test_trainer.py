"""Tests of the trainer wrapper: command lines, launchers, architecture configs and the export."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from idia.trainer import (
    arch_config,
    export_checkpoint,
    launcher,
    model_arg,
    trainer_args,
)

ARCH_DIR = Path(__file__).resolve().parents[1] / "workflow" / "models" / "idia-vit-xs"


def _args(**changes):
    base = dict(
        shards=["a/00000.tar", "b/00000.tar"], num_samples=100, model=model_arg("x", ARCH_DIR),
        logs="runs", name="r1", epochs=3, batch_size=8, lr=1e-3, wd=0.1, warmup=5, seed=4,
        workers=1, precision="fp32", device="cpu",
    )  # fmt: skip
    return trainer_args(**(base | changes))


def test_trainer_args_carry_every_setting():
    args = _args()
    value = dict(zip(args, args[1:]))
    assert value["--train-data"] == "a/00000.tar::b/00000.tar"
    assert value["--model"] == f"local-dir:{ARCH_DIR}"
    assert value["--seed"] == "4" and value["--epochs"] == "3" and value["--resume"] == "latest"
    assert _args(model=model_arg("RN50", None))[_args().index("--model") + 1] == "RN50"
    with pytest.raises(ValueError, match="no training shards"):
        _args(shards=[])


def test_launchers_for_cpu_one_node_and_many_nodes(monkeypatch):
    assert launcher(0) == launcher(1) == [sys.executable, "-m", "idia.trainer"]
    assert launcher(4)[:4] == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=4"]
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    multi = launcher(8, nodes=2, head="gpu001")
    assert multi[:4] == ["srun", "--overlap", "--nodes=2", "--ntasks-per-node=1"]
    assert {"--nnodes=2", "--nproc_per_node=8", "--rdzv_endpoint=gpu001:29500",
            "--rdzv_id=77"} <= set(multi)  # fmt: skip
    assert multi[-2:] == ["-m", "idia.trainer"]
    with pytest.raises(ValueError, match="needs gpus >= 1"):
        launcher(0, nodes=2)


def test_arch_config_from_the_project_or_open_clip():
    local = arch_config("idia-vit-xs", ARCH_DIR)
    assert local["model_cfg"]["vision_cfg"]["image_size"] == 32
    builtin = arch_config("RN50", None)
    assert builtin["model_cfg"]["vision_cfg"]["layers"] == [3, 4, 6, 3]
    with pytest.raises(ValueError, match="unknown architecture 'no-such-arch'"):
        arch_config("no-such-arch", None)


def test_export_writes_a_loadable_local_dir_model(tmp_path, model_dir):
    import torch
    from safetensors.torch import load_file

    from idia.models import load_clip

    weights = load_file(str(model_dir / "open_clip_model.safetensors"))
    checkpoint = tmp_path / "epoch_1.pt"
    # open_clip's trainer saves a DDP-wrapped state dict under "state_dict"
    torch.save({"state_dict": {f"module.{k}": v for k, v in weights.items()}}, checkpoint)
    out = tmp_path / "exported"
    export_checkpoint(checkpoint, arch_config("idia-vit-xs", ARCH_DIR), out)
    exported = load_file(str(out / "open_clip_model.safetensors"))
    assert exported.keys() == weights.keys()
    assert all(torch.equal(exported[k], weights[k]) for k in weights)
    clip = load_clip(model_dir=out, device="cpu")
    assert clip.model.visual.image_size == (32, 32)
