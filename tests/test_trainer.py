"""Tests of the trainer wrapper: command lines, launchers, architecture configs and the export."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idia.provenance import sha256_file
from idia.trainer import (
    arch_config,
    checkpoint_epoch,
    export_checkpoint,
    final_checkpoint,
    launcher,
    model_arg,
    model_card,
    prepare_resume,
    remove_checkpoints,
    run_id,
    run_training,
    train_model,
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
    # open_clip's speed option: passed only when asked for, so that run ids stay as they were
    assert "--torchcompile" not in args and _args(torchcompile=True)[-1] == "--torchcompile"


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


def test_run_id_comes_from_content_not_from_paths(tmp_path):
    config = arch_config("idia-vit-xs", ARCH_DIR)
    copies = []
    for name in ("cache-1", "cache-2"):  # Snakemake's source cache: a new folder per call
        copy = tmp_path / name / "idia-vit-xs"
        copy.mkdir(parents=True)
        text = (ARCH_DIR / "open_clip_config.json").read_text()
        (copy / "open_clip_config.json").write_text(text)
        copies.append(copy)
    hashes = ["aa" * 32, "bb" * 32]
    first = run_id(_args(model=model_arg("x", copies[0]), logs="r1"), hashes, config)
    again = run_id(_args(model=model_arg("x", copies[1]), logs="elsewhere"), hashes, config)
    assert first == again and len(first) == 12
    moved = run_id(_args(shards=["c/00000.tar", "d/00000.tar"]), hashes, config)
    assert moved == first  # the same bytes under another path: the same run
    assert run_id(_args(lr=2e-3), hashes, config) != first
    assert run_id(_args(seed=5), hashes, config) != first
    assert run_id(_args(epochs=4), hashes, config) != first
    assert run_id(_args(), ["aa" * 32, "cc" * 32], config) != first
    wider = {**config, "model_cfg": {**config["model_cfg"], "embed_dim": 128}}
    assert run_id(_args(), hashes, wider) != first


def _checkpoint(path: Path, epoch: int) -> Path:
    import torch

    torch.save({"epoch": epoch, "state_dict": {"w": torch.full((4,), float(epoch))}}, path)
    return path


def test_resume_keeps_only_the_latest_complete_epoch(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for epoch in (2, 10, 9):
        _checkpoint(folder / f"epoch_{epoch}.pt", epoch)
    cut = (folder / "epoch_10.pt").read_bytes()
    (folder / "epoch_11.pt").write_bytes(cut[: len(cut) // 2])  # a save killed half-way
    _checkpoint(folder / "tmp.pt", 12)
    _checkpoint(folder / "epoch_latest.pt", 10)
    assert checkpoint_epoch(folder / "epoch_11.pt") is None
    assert checkpoint_epoch(folder / "epoch_10.pt") == 10
    latest = prepare_resume(folder)
    assert latest == folder / "epoch_10.pt"  # by number, not by name: 10 after 9 and 2
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_10.pt"]
    assert prepare_resume(tmp_path / "no-run-yet") is None


def test_finished_run_checkpoints_are_removed_and_a_missing_one_is_named(tmp_path):
    runs = tmp_path / "runs"
    for run in ("abc", "old"):
        (runs / run / "checkpoints").mkdir(parents=True)
        (runs / run / "out.log").write_text("trainer log\n")
    final = _checkpoint(runs / "abc" / "checkpoints" / "epoch_3.pt", 3)
    _checkpoint(runs / "old" / "checkpoints" / "epoch_7.pt", 7)
    assert final_checkpoint(runs / "abc", 3) == final
    with pytest.raises(FileNotFoundError, match=r"epoch_4\.pt.*found: \['epoch_3\.pt'\]"):
        final_checkpoint(runs / "abc", 4)
    size = sum(p.stat().st_size for p in runs.rglob("*.pt"))
    assert remove_checkpoints(runs) == size
    assert not list(runs.rglob("*.pt"))
    assert (runs / "abc" / "out.log").read_text() == "trainer log\n"  # the logs stay


def _tiny_shard(folder: Path, samples: int) -> Path:
    """A webdataset shard of random 32 px images with captions, as open_clip's trainer reads."""
    import numpy as np
    import webdataset
    from PIL import Image

    rng = np.random.default_rng(0)
    shard = folder / "00000.tar"
    with webdataset.TarWriter(str(shard)) as tar:
        for i in range(samples):
            jpg = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(jpg, "JPEG")
            tar.write({"__key__": f"{i:05d}", "jpg": jpg.getvalue(), "txt": f"person {i % 7}"})
    return shard


def test_a_killed_training_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    """The real trainer, SIGKILLed once epoch 1's checkpoint is on disk, then rerun: it resumes
    at epoch 1 and its final weights equal, bit for bit, those of a run never interrupted."""
    import torch

    samples, shard = 256, str(_tiny_shard(tmp_path, 256))

    def args(logs: str) -> list[str]:
        return trainer_args(
            shards=[shard], num_samples=samples, model=model_arg("x", ARCH_DIR),
            logs=str(tmp_path / logs), name="run", epochs=2, batch_size=8, lr=1e-3, wd=0.1,
            warmup=1, seed=0, workers=1, precision="fp32", device="cpu",
        )  # fmt: skip

    checkpoints = tmp_path / "killed" / "run" / "checkpoints"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(
            launcher(0) + args("killed"), stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while checkpoint_epoch(checkpoints / "epoch_1.pt") != 1 and first.poll() is None:
            assert time.monotonic() < deadline, "no epoch_1.pt after 120 s"
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    # (no check of "Start epoch 1" in its log: the kill may come before the line is written)
    assert not (checkpoints / "epoch_2.pt").exists(), "killed too late: make epochs longer"
    assert prepare_resume(checkpoints) == checkpoints / "epoch_1.pt"

    out = io.StringIO()
    run_training(args("killed"), 0, out=out, threads=1)
    second = out.getvalue()
    assert second.startswith("$ ")
    assert f"=> resuming checkpoint '{checkpoints / 'epoch_1.pt'}' (epoch 1)" in second
    assert "Start epoch 1" in second and "Start epoch 0" not in second
    resumed = final_checkpoint(checkpoints.parent, 2)
    assert not (checkpoints / "epoch_1.pt").exists()  # the previous epoch is deleted

    run_training(args("whole"), 0, out=io.StringIO(), threads=1)
    whole = final_checkpoint(tmp_path / "whole" / "run", 2)
    a = torch.load(resumed, weights_only=True)["state_dict"]
    b = torch.load(whole, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_failing_trainer_raises_with_its_output_kept(tmp_path):
    out = io.StringIO()
    with pytest.raises(RuntimeError, match=r"exit \d+.*resumes from the latest epoch"):
        run_training(["--train-data", str(tmp_path / "missing.tar")], 0, out=out)
    assert out.getvalue().startswith("$ ") and "Traceback" in out.getvalue()


def test_card_hashes_the_manifest_independently_of_its_order():
    card = dict(
        model="m", arch="a", arch_config={}, train={"epochs": 1}, device="cpu", samples=3,
        run="abc", resumed_from_epoch=0, seconds=12.34,
    )  # fmt: skip
    one = model_card(manifest={"x.tar": "1", "y.tar": "2"}, **card)
    other = model_card(manifest={"y.tar": "2", "x.tar": "1"}, **card)
    changed = model_card(manifest={"x.tar": "1", "y.tar": "3"}, **card)
    assert one["data_manifest_sha256"] == other["data_manifest_sha256"]
    assert one["data_manifest_sha256"] != changed["data_manifest_sha256"]
    assert one["train_seconds"] == 12.3 and one["trainer"] == "open_clip_train.main"


def test_train_model_exports_a_carded_model_and_a_rerun_resumes_its_own_run(tmp_path):
    """One real epoch: the card names the run, the samples and the shards' hashes; the exported
    model is open_clip's local-dir layout; checkpoints go unless kept, and a rerun of the same
    setting finds the kept checkpoint of its own run (it resumes after epoch 1)."""
    import json

    shard = _tiny_shard(tmp_path, 32)
    stats = tmp_path / "00000_stats.json"
    stats.write_text(json.dumps({"successes": 32}))
    train = dict(
        epochs=1, batch_size=8, lr=1e-3, wd=0.1, warmup=1, seed=0, workers=1, precision="fp32",
        gpus=0, nodes=1, keep_checkpoints=True, torchcompile=False,
    )  # fmt: skip
    kept: list[Path] = []
    common = dict(
        model="m", arch="x", arch_dir=ARCH_DIR, shards=[str(shard)], stats=[stats],
        runs=tmp_path / "runs", threads=1,
    )  # fmt: skip
    out = tmp_path / "m"
    card = train_model(
        train=train, weights=out / "open_clip_model.safetensors", card=out / "card.json",
        keep_log=kept.append, **common,
    )  # fmt: skip
    assert json.loads((out / "card.json").read_text()) == card
    assert card["samples"] == 32 and card["shards"] == {str(shard): sha256_file(shard)}
    assert card["resumed_from_epoch"] == 0 and card["device"] == "cpu"
    assert (out / "open_clip_model.safetensors").is_file()
    assert kept == [tmp_path / "runs" / card["run_id"] / "job.log"]
    assert (tmp_path / "runs" / card["run_id"] / "checkpoints" / "epoch_1.pt").is_file()

    again = train_model(
        train=train | {"keep_checkpoints": False}, weights=out / "open_clip_model.safetensors",
        card=out / "card.json", **common,
    )  # fmt: skip
    assert again["run_id"] == card["run_id"] and again["resumed_from_epoch"] == 1
    assert not list((tmp_path / "runs").glob("*/checkpoints"))
