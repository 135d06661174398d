# Track C, retrieval: embed the base corpus one job per shard in clip-retrieval's layout
# (img_emb/*.npy + metadata/*.parquet), index it with FAISS, and retrieve each identity photo's
# look-alikes. The identities' photos are the attack's own embeddings of the retrieval model.


rule embed_base_shard:
    input:
        unpack(retrieval_model_inputs),
        tar=base_tar,
        code=package("retrieval", "attack", "models", "compat", "download"),
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
        batch_size=INJECTION["retrieval"].get("batch_size", 256) if INJECTION else 256,
        chunk=INJECTION["retrieval"].get("chunk", 4096) if INJECTION else 4096,
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
        code=package("retrieval"),
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
        kind=INJECTION["retrieval"].get("index", "auto") if INJECTION else "auto",
        seed=INJECTION["retrieval"].get("seed", 0) if INJECTION else 0,
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
        code=package("retrieval"),
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
        k=INJECTION["retrieval"]["k"] if INJECTION else 0,
        nprobe=INJECTION["retrieval"].get("nprobe", 16) if INJECTION else 0,
    script:
        "../scripts/retrieve.py"
