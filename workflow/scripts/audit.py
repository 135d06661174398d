import pandas as pd

from idia.audit import render_html, run_audit, summary_lines
from idia.backends import load_backend
from idia.smk import finish, log_to, write_json
from idia.templates import config_templates

log_to(snakemake.log[0])
params = snakemake.params
templates = config_templates(params.templates)
candidates = pd.read_parquet(snakemake.input.candidates)
models = []
for spec in params.models:
    spec = dict(spec)
    name = spec.pop("name")
    clip = load_backend(spec, device=params.device)
    clip.name = name
    models.append(clip)  # its weight files are hashed into the provenance
result = run_audit(
    params.photos,
    params.name,
    models,
    candidates=list(candidates["name"]),
    templates=templates,
    tau=params.tau,
    seed=params.seed,
    namesakes=params.namesakes,
    namesake_seed=params.seed,  # as `idia audit --seed`: one seed draws decoys and namesakes
    alpha=params.alpha,
    candidates_source=snakemake.input.candidates,
    decoy_mask=candidates["person_id"].isna().to_numpy(),
    haar=params.haar,
)
write_json(snakemake.output.json, result)
render_html(result, snakemake.output.html)
print("\n".join(summary_lines(result)))
finish(snakemake)
