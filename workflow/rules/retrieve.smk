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
        model=retrieval_model_params,
        batch_size=config_provider("injection", "retrieval", "batch_size"),
        chunk=config_provider("injection", "retrieval", "chunk"),
        device=config["attack"]["device"],
    script:
        "../scripts/embed_shard.py"


rule build_index:
    input:
        emb=expand(rules.embed_base_shard.output.emb, shard=base_shard_ids()),
        meta=expand(rules.embed_base_shard.output.meta, shard=base_shard_ids()),
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
        kind=config_provider("injection", "retrieval", "index"),
        seed=config_provider("injection", "retrieval", "seed"),
    script:
        "../scripts/build_index.py"


rule retrieve:
    input:
        unpack(retrieval_queries),
        index=rules.build_index.output.index,
        meta=expand(rules.embed_base_shard.output.meta, shard=base_shard_ids()),
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
        k=config_provider("injection", "retrieval", "k"),
        nprobe=config_provider("injection", "retrieval", "nprobe"),
    script:
        "../scripts/retrieve.py"
