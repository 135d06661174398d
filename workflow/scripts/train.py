import hashlib
import json
import logging
from pathlib import Path

from idia.models import pick_device
from idia.smk import finish, log_to
from idia.trainer import (
    arch_config,
    checkpoint_epoch,
    export_checkpoint,
    final_checkpoint,
    model_arg,
    prepare_resume,
    remove_checkpoints,
    run_id,
    run_training,
    shard_manifest,
    trainer_args,
    write_card,
)

log = log_to(snakemake.log[0])
train = dict(snakemake.params.train)
arch = snakemake.params.arch
arch_dir = str(Path(snakemake.input.arch).parent) if snakemake.input.get("arch") else None
shards = list(snakemake.input.shards)
samples = sum(json.loads(Path(p).read_text())["successes"] for p in snakemake.input.stats)
gpus = int(train.get("gpus", 0))
device = "cuda" if gpus > 0 else pick_device("cpu")
manifest = shard_manifest(shards)
config = arch_config(arch, arch_dir)
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
# A run per content of what defines it: every attempt of the same setting resumes its own
# checkpoints, a changed one starts afresh instead of resuming someone else's.
name = run_id(args, list(manifest.values()), config)
args[args.index("--name") + 1] = name
run_dir = Path(snakemake.params.runs) / name
log.keep(run_dir / "job.log")
resume = prepare_resume(run_dir / "checkpoints")
start = checkpoint_epoch(resume) if resume else 0  # read now: the trainer deletes the file
logging.info(
    "training %s on %d samples from %d shards: run %s, %s",
    snakemake.wildcards.model,
    samples,
    len(shards),
    name,
    f"resuming after epoch {start} from {resume}" if resume else "from epoch 0",
)
seconds = run_training(args, gpus, threads=snakemake.threads, nodes=int(train.get("nodes", 1)))
checkpoint = final_checkpoint(run_dir, train["epochs"])
export_checkpoint(checkpoint, config, Path(snakemake.output.weights).parent)
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
        "run_id": name,
        "resumed_from_epoch": start,
        "train_seconds": round(seconds, 1),
        "trainer": "open_clip_train.main",
    },
)
if not train.get("keep_checkpoints", False):
    freed = remove_checkpoints(snakemake.params.runs)
    logging.info(
        "removed the runs' checkpoints (%.1f MB); train.keep_checkpoints keeps them", freed / 1e6
    )
logging.info("trained %s in %.0f s", snakemake.wildcards.model, seconds)
finish(snakemake)
