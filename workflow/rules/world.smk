# The embedded world: rendered identities, held-out attack photos and a web corpus (track: world).


rule world:
    output:
        identities=f"{RESULTS}/world/identities.parquet",
        truth=f"{RESULTS}/world/truth.parquet",
        summary=f"{RESULTS}/world/world.json",
        photos=directory(f"{RESULTS}/world/photos"),
        images=directory(f"{RESULTS}/world/corpus/images"),
        urls=expand(f"{RESULTS}/world/corpus/urls/{{shard}}.parquet", shard=shard_ids()),
    input:
        code=package("world", "names"),
    params:
        world=config.get("world", {}),
    log:
        script_log("world/world"),
    benchmark:
        f"{RESULTS}/benchmarks/world/world.tsv"
    script:
        "../scripts/world.py"


rule haar_rate:
    output:
        f"{RESULTS}/world/haar.json",
    input:
        identities=f"{RESULTS}/world/identities.parquet",
        code=package("faces"),
    params:
        haar=config["haar"],
    log:
        script_log("world/haar"),
    script:
        "../scripts/haar.py"
