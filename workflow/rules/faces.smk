# Track C, face filter: a ResNet face classifier trained on the identities' own photos; Haar
# faces in every retrieved base image (one job per base shard), classified; a person is present in
# the base corpus when the classifier names them on enough retrieved faces.


rule face_classifier:
    input:
        identities=identities_table(),
        outcomes=rules.identities.output.urls,
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
        retrieved=rules.retrieve.output[0],
        model=rules.face_classifier.output.model,
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
        shards=expand(rules.faces_shard.output.table, shard=base_shard_ids()),
        identities=identities_table(),
        classifier=rules.face_classifier.output.report,
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
