from pathlib import Path

from idia.retrieval import build_index, index_spec, read_embeddings, write_index
from idia.smk import finish, log_to, write_json

log_to(snakemake.log[0])
root = Path(snakemake.input.emb[0]).parent.parent
emb, metadata = read_embeddings(root, snakemake.params.parts)
spec = index_spec(len(emb), emb.shape[1], snakemake.params.kind)
index = build_index(
    emb, snakemake.params.kind, seed=snakemake.params.seed, threads=snakemake.threads
)
write_index(index, snakemake.output.index)
info = {"vectors": int(index.ntotal), "dim": int(emb.shape[1]), "factory": spec,
        "parts": list(snakemake.params.parts)}  # fmt: skip
write_json(snakemake.output.info, info)
print(f"FAISS index {spec!r} over {index.ntotal} base images (d={emb.shape[1]})")
finish(snakemake)
