# Shared helpers: config validation, path helpers and input functions. No rule lives here.
import math
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

WORLD = config["track"] == "world"
RESULTS = "results"

if WORLD and "world" not in config:
    raise ValueError(
        "config: track 'world' needs a `world:` section (see config/config.yaml)"
    )
if not WORLD and ("captions" not in config or "identities" not in config):
    raise ValueError(
        "config: track 'laion' needs `captions:` (dir, shards) and `identities:` "
        "(see config/paper.yaml)"
    )
if WORLD and config["world"]["n_members"] > config["world"]["n_identities"]:
    raise ValueError("config: world.n_members exceeds world.n_identities")
for _name, _model in config["models"].items():
    if ("train" in _model) == ("pretrained" in _model):
        raise ValueError(
            f"config: model {_name!r} needs exactly one of `train:` (trained by the workflow) "
            "or `pretrained:` (an open_clip pretrained tag)"
        )


wildcard_constraints:
    shard=r"[A-Za-z0-9_.-]+",
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


def canonical(value):
    """A config value with dict keys sorted, recursively: Snakemake sees a dict param as changed
    when only its key order changed, so every dict param goes through here."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def package(*modules):
    """The package sources a rule runs, declared as inputs so that code changes rerun it."""
    return [workflow.source_path(f"../../src/idia/{m}.py") for m in modules]


def script_log(name):
    return f"logs/{name}.log"


def shard_ids():
    if WORLD:
        return [f"part-{i:05d}" for i in range(config["world"]["shards"])]
    return list(config["captions"]["shards"])


def identities_table():
    return f"{RESULTS}/world/identities.parquet" if WORLD else config["identities"]


def caption_parquet(wildcards):
    if WORLD:
        return f"{RESULTS}/download/{wildcards.shard}/00000.parquet"
    return f"{config['captions']['dir']}/{wildcards.shard}.parquet"


def caption_column():
    return "caption" if WORLD else config["captions"].get("column", "caption")


def training_shards():
    return [f"{RESULTS}/download/{s}/00000.tar" for s in shard_ids()]


def model_names():
    return list(config["models"])


def trained_models():
    return [
        f"{RESULTS}/models/{name}/card.json"
        for name, spec in config["models"].items()
        if "train" in spec
    ]


def model_inputs(wildcards):
    """A trained model's exported checkpoint; nothing for a pretrained one (loaded by name)."""
    spec = config["models"][wildcards.model]
    if "train" in spec:
        return {
            "weights": f"{RESULTS}/models/{wildcards.model}/open_clip_model.safetensors",
            "card": f"{RESULTS}/models/{wildcards.model}/card.json",
        }
    return {}


def model_spec(name):
    """How a script loads model ``name``: its exported folder, or an open_clip pretrained tag."""
    spec = config["models"][name]
    if "train" in spec:
        return {"model_dir": f"{RESULTS}/models/{name}"}
    return {"arch": spec["arch"], "pretrained": spec["pretrained"]}


def model_params(wildcards):
    return model_spec(wildcards.model)


def arch_config(wildcards):
    arch = config["models"][wildcards.model]["arch"]
    return workflow.source_path(f"../models/{arch}/open_clip_config.json")


def attack_ks():
    return list(range(1, config["attack"]["k_max"] + 1))


def candidate_lists():
    lists = config["candidates"]["lists"]
    return {} if lists == "faker" else canonical(lists)


FIGURES = [
    "metrics_vs_k",
    "confusion",
    "rate_by_bin",
    "identities_per_bin",
    "tpr_heatmap",
    "roc",
    "pvalue_qq",
]


def figure_targets():
    return [
        f"{RESULTS}/figures/{model}/{fig}.{ext}"
        for model in model_names()
        for fig in FIGURES
        for ext in ("png", "pdf")
    ]


def all_targets():
    targets = figure_targets() + [
        f"{RESULTS}/attack/summary.csv",
        f"{RESULTS}/stats/summary.csv",
    ]
    if WORLD:
        targets += [f"{RESULTS}/world/haar.json", f"{RESULTS}/search/truth_check.json"]
    return targets


onsuccess:
    summary = Path(f"{RESULTS}/attack/headline.txt")
    if summary.exists():
        print(summary.read_text().rstrip())


def audit_slug():
    """A file-system-safe folder name for the audited person (accents and quotes folded)."""
    import re
    import unicodedata

    name = str(config.get("audit_name", "")).strip()
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", folded).strip("-").lower() or "person"


def audit_target(wildcards):
    missing = [key for key in ("audit_photos", "audit_name") if not config.get(key)]
    if missing:
        raise WorkflowError(
            "the audit needs a folder of photos and a name: "
            'snakemake audit --config audit_photos=DIR audit_name="First Last" '
            f"(missing: {', '.join(missing)})"
        )
    if not Path(config["audit_photos"]).is_dir():
        raise WorkflowError(f"audit_photos is not a folder: {config['audit_photos']}")
    return f"{RESULTS}/audit/{audit_slug()}/audit.html"


def audit_inputs(wildcards):
    """Every trained model's weights; pretrained ones load by name."""
    return {
        f"weights_{name}": f"{RESULTS}/models/{name}/open_clip_model.safetensors"
        for name, spec in config["models"].items()
        if "train" in spec
    }


def audit_models(wildcards):
    return [{"name": name, **model_spec(name)} for name in model_names()]
