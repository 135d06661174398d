# Track C, face filter: a ResNet face classifier trained on the identities' own photos; Haar
# faces in every retrieved base image (one job per base shard), classified; a person is present in
# the base corpus when the classifier names them on enough retrieved faces. Then the cohort.


rule face_classifier:
    input:
        identities=identities_table(),
        outcomes=f"{RESULTS}/identities/outcomes.parquet",
        code=package("face_classifier.py"),
    output:
        model=f"{RESULTS}/faces/classifier/classifier.pt",
        report=f"{RESULTS}/faces/classifier/report.json",
        photos=f"{RESULTS}/faces/classifier/photos.parquet",
    log:
        script_log("faces/classifier"),
    benchmark:
        f"{RESULTS}/benchmarks/faces/classifier.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 64  # scaled down to the cores the run is given
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=config_provider("injection", "face_classifier", "gpus"),
    params:
        classifier=config_provider("injection", "face_classifier"),
        haar=canonical(config["haar"]),
    script:
        "../scripts/face_classifier.py"


rule faces_shard:
    input:
        tar=base_tar,
        retrieved=f"{RESULTS}/retrieval/retrieved.parquet",
        model=f"{RESULTS}/faces/classifier/classifier.pt",
        code=package("faces_shard.py"),
    output:
        table=f"{RESULTS}/faces/shards/{{shard}}.parquet",
        crops=directory(f"{RESULTS}/faces/crops/{{shard}}"),
    log:
        script_log("faces/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/faces/{{shard}}.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        haar=canonical(config["haar"]),
    script:
        "../scripts/faces_shard.py"


rule presence:
    input:
        shards=expand(
            f"{RESULTS}/faces/shards/{{shard}}.parquet", shard=base_shard_ids()
        ),
        identities=identities_table(),
        classifier=f"{RESULTS}/faces/classifier/report.json",
        truth=presence_truth,
        code=package("presence.py"),
    output:
        table=report(
            f"{RESULTS}/faces/presence.csv",
            caption="../report/presence.rst",
            category="Controlled injection",
        ),
        summary=f"{RESULTS}/faces/filter.json",
    log:
        script_log("faces/presence"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        presence=config_provider("injection", "presence"),
    script:
        "../scripts/presence.py"


rule cohort:
    input:
        presence=f"{RESULTS}/faces/presence.csv",
        pairs=f"{RESULTS}/pairs/report.csv",
        identities=identities_table(),
        code=package("cohort.py"),
    output:
        table=report(
            f"{RESULTS}/inject/cohort.csv",
            caption="../report/cohort.rst",
            category="Controlled injection",
        ),
        identities=f"{RESULTS}/inject/cohort_identities.parquet",
    log:
        script_log("inject/cohort"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        cohort=config_provider("injection", "cohort"),
        min_pairs=cohort_min_pairs,
    script:
        "../scripts/cohort.py"
