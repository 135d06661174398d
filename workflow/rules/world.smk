# The embedded world: rendered identities, held-out attack photos and a web corpus (track: world).


rule world:
    input:
        code=package("world", "names"),
    output:
        identities=f"{RESULTS}/world/identities.parquet",
        truth=f"{RESULTS}/world/truth.parquet",
        summary=f"{RESULTS}/world/world.json",
        photos=directory(f"{RESULTS}/world/photos"),
        images=directory(f"{RESULTS}/world/corpus/images"),
        urls=expand(f"{RESULTS}/world/corpus/urls/{{shard}}.parquet", shard=shard_ids()),
    log:
        script_log("world/world"),
    benchmark:
        f"{RESULTS}/benchmarks/world/world.tsv"
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # track C's `base:` has its own rule: changing it leaves track L's world alone
        world=canonical(
            {k: v for k, v in config.get("world", {}).items() if k != "base"}
        ),
    script:
        "../scripts/world.py"


rule haar_rate:
    input:
        identities=f"{RESULTS}/world/identities.parquet",
        code=package("faces"),
    output:
        f"{RESULTS}/world/haar.json",
    log:
        script_log("world/haar"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        haar=canonical(config["haar"]),
    script:
        "../scripts/haar.py"


rule world_base:
    input:
        code=package("world", "names"),
    output:
        summary=f"{RESULTS}/world/base/base.json",
        truth=f"{RESULTS}/world/base/truth.parquet",
        pairs=f"{RESULTS}/world/base/pairs.parquet",
        images=directory(f"{RESULTS}/world/base/images"),
        pair_images=directory(f"{RESULTS}/world/base/pairs"),
        eval_dir=directory(f"{RESULTS}/world/base/eval/classes"),
        eval_pairs=f"{RESULTS}/world/base/eval/pairs.parquet",
        urls=expand(
            f"{RESULTS}/world/base/urls/{{shard}}.parquet", shard=base_shard_ids()
        ),
    log:
        script_log("world/base"),
    benchmark:
        f"{RESULTS}/benchmarks/world/base.tsv"
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        world=canonical(
            {
                key: config["world"][key]
                for key in ("seed", "n_identities", "caption_templates")
            }
            | {"image_size": config["world"].get("image_size", 112)}
        )
        if WORLD
        else {},
        base=canonical(config.get("world", {}).get("base", {})),
    script:
        "../scripts/world_base.py"
