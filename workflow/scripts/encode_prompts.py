import pandas as pd
import torch

from idia.attack import encode_prompts
from idia.backends import load_backend
from idia.smk import finish, log_to
from idia.templates import config_templates

log_to(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
templates = config_templates(snakemake.params.templates)
clip = load_backend(snakemake.params.model, device=snakemake.params.device)
names = list(pd.read_parquet(snakemake.input.candidates)["name"])
emb = encode_prompts(
    clip.model,
    clip.tokenizer,
    names,
    templates,
    batch_size=snakemake.params.batch_size,
    device=clip.device,
    out=snakemake.output[0],  # written in place: a 10^5-name pool never sits in memory
)
print(f"{clip.name}: encoded {len(templates)} x {len(names)} prompts -> {emb.shape}")
finish(snakemake)
