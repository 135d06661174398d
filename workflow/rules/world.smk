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
        world=canonical(config.get("world", {})),
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
