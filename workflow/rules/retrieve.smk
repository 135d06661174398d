# Track C, retrieval: embed the base corpus one job per shard in clip-retrieval's layout
# (img_emb/*.npy + metadata/*.parquet), index it with FAISS, and retrieve each identity photo's
# look-alikes. The identities' photos are the attack's own embeddings of the retrieval model.


rule embed_base_shard:
    input:
        unpack(retrieval_model_inputs),
        tar=base_tar,
        code=package("embed_shard.py"),
    output:
        emb=f"{RESULTS}/retrieval/embeddings/img_emb/img_emb_{{shard}}.npy",
        meta=f"{RESULTS}/retrieval/embeddings/metadata/metadata_{{shard}}.parquet",
    log:
        script_log("retrieval/embed/{shard}"),
    benchmark:
        f"{RESULTS}/benchmarks/retrieval/embed/{{shard}}.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        model=lambda wildcards: model_spec(retrieval_model()),
        batch_size=injection_setting("retrieval", "batch_size"),
        chunk=injection_setting("retrieval", "chunk"),
        device=config["attack"].get("device", "auto"),
    script:
        "../scripts/embed_shard.py"


rule build_index:
    input:
        emb=expand(
            f"{RESULTS}/retrieval/embeddings/img_emb/img_emb_{{shard}}.npy",
            shard=base_shard_ids(),
        ),
        meta=expand(
            f"{RESULTS}/retrieval/embeddings/metadata/metadata_{{shard}}.parquet",
            shard=base_shard_ids(),
        ),
        code=package("build_index.py"),
    output:
        index=f"{RESULTS}/retrieval/index/image.index",
        info=f"{RESULTS}/retrieval/index/index.json",
    log:
        script_log("retrieval/index"),
    benchmark:
        f"{RESULTS}/benchmarks/retrieval/index.tsv"
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=120,
    params:
        parts=base_shard_ids(),
        kind=injection_setting("retrieval", "index"),
        seed=injection_setting("retrieval", "seed"),
    script:
        "../scripts/build_index.py"


rule retrieve:
    input:
        index=f"{RESULTS}/retrieval/index/image.index",
        meta=expand(
            f"{RESULTS}/retrieval/embeddings/metadata/metadata_{{shard}}.parquet",
            shard=base_shard_ids(),
        ),
        queries=lambda wildcards: f"{RESULTS}/attack/{retrieval_model()}/image_emb.npy",
        photos=lambda wildcards: f"{RESULTS}/attack/{retrieval_model()}/photos.parquet",
        code=package("retrieve.py"),
    output:
        f"{RESULTS}/retrieval/retrieved.parquet",
    log:
        script_log("retrieval/retrieve"),
    conda:
        "../../envs/idia.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        parts=base_shard_ids(),
        k=injection_setting("retrieval", "k"),
        nprobe=injection_setting("retrieval", "nprobe"),
    script:
        "../scripts/retrieve.py"
