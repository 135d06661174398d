import hashlib
import json
import logging
from pathlib import Path

from idia.models import pick_device
from idia.smk import finish, log_to
from idia.trainer import (
    arch_config,
    export_checkpoint,
    model_arg,
    run_training,
    shard_manifest,
    trainer_args,
    write_card,
)

log_to(snakemake.log[0])
train = dict(snakemake.params.train)
arch = snakemake.params.arch
arch_dir = str(Path(snakemake.input.arch).parent) if snakemake.input.get("arch") else None
shards = list(snakemake.input.shards)
samples = sum(json.loads(Path(p).read_text())["successes"] for p in snakemake.input.stats)
gpus = int(train.get("gpus", 0))
device = "cuda" if gpus > 0 else pick_device("cpu")
manifest = shard_manifest(shards)
args = trainer_args(
    shards=shards,
    num_samples=samples,
    model=model_arg(arch, arch_dir),
    logs=snakemake.params.runs,
    name="pending",
    epochs=train["epochs"],
    batch_size=train["batch_size"],
    lr=train["lr"],
    wd=train.get("wd", 0.1),
    warmup=train.get("warmup", 100),
    seed=train.get("seed", 0),
    workers=train.get("workers", 1),
    precision=train.get("precision", "fp32"),
    device=device,
)
# A run directory per exact setting: an interrupted job resumes its own run, a changed one starts
# afresh instead of resuming someone else's checkpoint.
run_id = hashlib.sha256(json.dumps([args, manifest], sort_keys=True).encode()).hexdigest()[:12]
args[args.index("--name") + 1] = run_id
logging.info(
    "training %s on %d samples from %d shards (run %s)",
    snakemake.wildcards.model,
    samples,
    len(shards),
    run_id,
)
seconds = run_training(
    args, gpus, snakemake.log[0], threads=snakemake.threads, nodes=int(train.get("nodes", 1))
)
checkpoint = Path(snakemake.params.runs) / run_id / "checkpoints" / f"epoch_{train['epochs']}.pt"
if not checkpoint.exists():
    checkpoint = checkpoint.with_name("epoch_latest.pt")
export_checkpoint(checkpoint, arch_config(arch, arch_dir), Path(snakemake.output.weights).parent)
write_card(
    snakemake.output.card,
    {
        "model": snakemake.wildcards.model,
        "arch": arch,
        "arch_config": json.loads(Path(snakemake.output.config).read_text()),
        "train": train,
        "device": device,
        "samples": samples,
        "shards": manifest,
        "data_manifest_sha256": hashlib.sha256(
            json.dumps(manifest, sort_keys=True).encode()
        ).hexdigest(),
        "run_id": run_id,
        "train_seconds": round(seconds, 1),
        "trainer": "open_clip_train.main",
    },
)
logging.info("trained %s in %.0f s", snakemake.wildcards.model, seconds)
finish(snakemake)
