# Shared helpers: config validation, path helpers and input functions. No rule lives here.
from pathlib import Path
from types import SimpleNamespace

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from idia.codedeps import script_modules
from idia.settings import (
    canonical,
    check_config,
    injected_models,
    injection_levels,
    lookup,
    model_registry,
    utility_models,
)
from idia.sources import (
    LAION_COLUMNS_KEY,
    RESOURCES,
    Needed,
    file_name,
    is_remote,
    missing_message,
    parquet_files,
    shipped,
    source_path,
)

validate(config, "../schemas/config.schema.yaml")

RESULTS = "results"


def resolve_sources(value):
    if isinstance(value, dict):
        return {
            k: v if k == "columns" else resolve_sources(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve_sources(v) for v in value]
    return shipped(value, workflow.basedir)


SOURCES = resolve_sources(config["sources"])
# a local folder of LAION metadata stands for its parquet files
SOURCES["laion"]["files"] = parquet_files(SOURCES["laion"]["files"])
INJECTION = config.get("injection")
# Targets that check a run against a known truth (the embedded world adds its own).
CHECKS = []
# (producer, wildcards) pairs whose outputs the jobs of optional rule files read, kept current
# by kept_outputs(); the embedded world and the held-out pairs add theirs.
KEPT = []


MODELS = model_registry(config)
# track C's grid: {"<architecture>-n<N>": model}, a part of MODELS
GRID = injected_models(INJECTION)
check_config(config)


def config_provider(*keys):
    """``config[keys[0]][keys[1]]...`` as a params/resources function, read when a job is built
    (the schema has filled in every default), so that a rule may name a setting of an optional
    section (`injection:`, `world.base`) and a config without it still parses."""

    def setting(wildcards):
        return lookup(config, *keys)

    return setting


def model_setting(*keys):
    """``MODELS[model][keys[0]]...`` of the job's ``{model}`` wildcard, as a params/resources
    function (e.g. a trained model's `train.gpus`)."""

    def setting(wildcards):
        return lookup(MODELS[wildcards.model], *keys)

    return setting


wildcard_constraints:
    shard=r"[A-Za-z0-9_.-]+",
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


def package(script):
    """The idia modules ``script`` imports, directly or through other idia modules, as inputs: a
    changed module reruns exactly the jobs whose script uses it. Derived from the imports, so
    the lists cannot drift from the code."""
    root = Path(workflow.basedir)
    modules = script_modules(
        root / "workflow" / "scripts" / script, root / "src" / "idia"
    )
    return [workflow.source_path(f"../../src/idia/{m}.py") for m in modules]


def script_log(name):
    return f"logs/{name}.log"


# ---------------------------------------------------------------- sources (sources.smk)


def remote_sources():
    """{(group, file name): (location, checksums file)} of every source fetched over the net."""
    groups = [("laion", SOURCES["laion"], SOURCES["laion"]["files"])]
    groups.append(
        (
            "names",
            SOURCES["names"],
            [SOURCES["names"][k] for k in ("first", "surnames")],
        )
    )
    if INJECTION:
        cc3m = SOURCES["cc3m"]
        locations = [cc3m[k] for k in ("train", "validation") if k in cc3m]
        groups.append(("cc3m", cc3m, locations))
    found = {}
    for group, section, locations in groups:
        for location in locations:
            if is_remote(location):
                found[(group, file_name(location))] = (
                    location,
                    section.get("checksums"),
                )
    return found


REMOTE = remote_sources()


def fetched_files():
    """fetch_source's wildcard constraint: exactly the remote sources' file names, so that a
    file the user put under resources/ is never mistaken for a download."""
    import re

    return "|".join(re.escape(f) for _, f in REMOTE) or "(?!)"


def fetch_checksums(wildcards):
    sums = REMOTE[(wildcards.group, wildcards.file)][1]
    return [sums] if sums else []


def fetch_location(wildcards):
    return REMOTE[(wildcards.group, wildcards.file)][0]


def user_supplied():
    """The local inputs a user obtains by hand, with how; files the workflow makes are not."""
    how = {
        "facescrub": "FaceScrub's list (facescrub_actors.txt / facescrub_actresses.txt): "
        "request the zip at https://vintage.winklerbros.net/facescrub.html and unzip it here.",
        "extra_identities": "a folder with actors/ and actresses/ holding <First_Last>.txt URL "
        "lists (the paper's are in config/reference/european_celebs).",
        "laion": "a LAION metadata parquet (or a folder of them): download it (e.g. from the "
        "gated hub dataset, with HF_TOKEN set) or use its hf:// location instead of a local path.",
        "names": "a name list: use the URL in config/paper.yaml or download it to this path.",
        "cc3m": "a CC3M TSV (caption<TAB>url, no header): use its public URL (config/paper.yaml) "
        "or download it to this path.",
        "imagenet": "the ImageNet validation images, one folder per class: licence-bound; "
        "download from https://image-net.org after accepting its terms.",
        "pairs": "a table of held-out image-caption pairs (path, caption) for the utility "
        "table, or leave injection.utility.pairs out to use sources.cc3m.validation.",
        "classnames": "a csv of class names, one row per folder (folder,name), or leave "
        "injection.utility.classnames out for ImageNet's 1000 classes.",
    }
    needed = [Needed(p, how["facescrub"]) for p in SOURCES["facescrub"]]
    needed += [Needed(p, how["extra_identities"]) for p in SOURCES["extra_identities"]]
    needed += [
        Needed(p, how["laion"]) for p in SOURCES["laion"]["files"] if not is_remote(p)
    ]
    needed += [
        Needed(SOURCES["names"][k], how["names"])
        for k in ("first", "surnames")
        if not is_remote(SOURCES["names"][k])
    ]
    if INJECTION:
        needed += [
            Needed(SOURCES["cc3m"][k], how["cc3m"])
            for k in ("train", "validation")
            if k in SOURCES["cc3m"] and not is_remote(SOURCES["cc3m"][k])
        ]
        utility = INJECTION["utility"]
        needed.append(Needed(utility["eval_dir"], how["imagenet"]))
        needed += [
            Needed(utility[k], how[k]) for k in ("pairs", "classnames") if k in utility
        ]
    return [n for n in needed if not n.path.startswith(f"{RESULTS}/")]


_missing = missing_message(user_supplied())
if _missing:
    raise WorkflowError(_missing)


def shard_ids():
    """One caption-search (and download) shard per LAION metadata file, named by its stem."""
    stems = [Path(file_name(f)).stem for f in SOURCES["laion"]["files"]]
    if len(set(stems)) != len(stems):
        raise ValueError(
            f"config: sources.laion.files have repeated file names: {stems}"
        )
    return stems


def reference_counts():
    """A published counts table to compare ours with (the paper's), when the config names one."""
    reference = config["search"].get("reference")
    return shipped(reference, workflow.basedir) if reference else []


def laion_columns():
    """The LAION metadata's column names (the schema defaults LAION's own)."""
    columns = SOURCES["laion"]["columns"]
    return {key: columns[key] for key in ("url", "caption", "key")}


def caption_parquet(wildcards):
    location = dict(zip(shard_ids(), SOURCES["laion"]["files"]))[wildcards.shard]
    return source_path("laion", location)


def name_lists(wildcards):
    return {k: source_path("names", SOURCES["names"][k]) for k in ("first", "surnames")}


def identity_shard_ids():
    return [f"{i:05d}" for i in range(config["identities"]["shards"])]


def identities_table():
    return f"{RESULTS}/identities/identities.parquet"


def training_shards():
    return [f"{RESULTS}/download/{s}/00000.tar" for s in shard_ids()]


def model_names():
    return list(MODELS)


def trained_models():
    return [
        f"{RESULTS}/models/{name}/card.json"
        for name, spec in MODELS.items()
        if "train" in spec
    ]


def training_inputs(wildcards):
    """A model's training shards and the JSON files that count their samples."""
    level = MODELS[wildcards.model].get("injection")
    if level:
        folder = f"{RESULTS}/inject/n{level['n']}"
        return {
            "shards": [f"{folder}/{i}.tar" for i in inject_shard_ids()],
            "stats": [f"{folder}/inject.json"],
        }
    return {
        "shards": training_shards(),
        "stats": expand(
            f"{RESULTS}/download/{{shard}}/download.json", shard=shard_ids()
        ),
    }


def model_identities(wildcards):
    """Whose photos a model is attacked with: every identity, or the injection cohort."""
    if MODELS[wildcards.model].get("injection"):
        return f"{RESULTS}/inject/cohort_identities.parquet"
    return identities_table()


def model_truth(wildcards):
    """Members and occurrence bins: found by caption search, or set by injection."""
    level = MODELS[wildcards.model].get("injection")
    if level:
        return f"{RESULTS}/inject/n{level['n']}/truth.parquet"
    return f"{RESULTS}/search/counts.parquet"


def model_inputs(wildcards):
    """A trained model's exported checkpoint; nothing for a pretrained one (loaded by name)."""
    spec = MODELS[wildcards.model]
    if "train" in spec:
        return {
            "weights": f"{RESULTS}/models/{wildcards.model}/open_clip_model.safetensors",
            "card": f"{RESULTS}/models/{wildcards.model}/card.json",
        }
    return {}


def model_spec(name):
    """How a script loads model ``name``: its exported folder, or an open_clip pretrained tag."""
    spec = MODELS[name]
    if "train" in spec:
        return {"model_dir": f"{RESULTS}/models/{name}"}
    if "spec" in spec:
        return {"spec": spec["spec"]}
    return {"arch": spec["arch"], "pretrained": spec["pretrained"]}


def model_params(wildcards):
    return model_spec(wildcards.model)


def training_runs(wildcards):
    """Where open_clip's trainer keeps a model's runs (logs, epoch checkpoints)."""
    return f"{RESULTS}/models/{wildcards.model}/runs"


def figure_model_spec(wildcards):
    """What a figure says about its model: everything but the training recipe."""
    return canonical({k: v for k, v in MODELS[wildcards.model].items() if k != "train"})


def arch_config_file(wildcards):
    """The project's own architecture config; none for an open_clip built-in (e.g. RN50)."""
    arch = MODELS[wildcards.model]["arch"]
    local = (
        Path(workflow.basedir) / "workflow" / "models" / arch / "open_clip_config.json"
    )
    return (
        workflow.source_path(f"../models/{arch}/open_clip_config.json")
        if local.exists()
        else []
    )


def attack_ks():
    return list(range(1, config["attack"]["k_max"] + 1))


FIGURES = [
    "metrics_vs_k",
    "confusion",
    "rate_by_bin",
    "identities_per_bin",
    "tpr_heatmap",
    "roc",
    "pvalue_qq",
]


# The occurrence-bin figures need many bins; an injected model has one level, plotted per
# architecture over all levels instead (INJECTION_FIGURES).
INJECTED_MODEL_FIGURES = ["metrics_vs_k", "confusion", "roc", "pvalue_qq"]
INJECTION_FIGURES = ["rate_by_n", "tpr_heatmap_by_n"]


def figure_targets():
    targets = []
    for model, spec in MODELS.items():
        figures = INJECTED_MODEL_FIGURES if spec.get("injection") else FIGURES
        targets += [
            f"{RESULTS}/figures/{model}/{fig}.{ext}"
            for fig in figures
            for ext in ("png", "pdf")
        ]
    for name in INJECTION["models"] if INJECTION else []:
        targets += [
            f"{RESULTS}/figures/{name}/{fig}.{ext}"
            for fig in INJECTION_FIGURES
            for ext in ("png", "pdf")
        ]
    return targets


def base_shard_ids():
    if not INJECTION:
        return []
    return [f"part-{i:05d}" for i in range(INJECTION["base"]["shards"])]


def base_tsv():
    return source_path("cc3m", SOURCES["cc3m"]["train"])


def base_tar(wildcards):
    return f"{RESULTS}/base/download/{wildcards.shard}/00000.tar"


def base_image_options(wildcards):
    """The CC3M recipe: at most `image_size` px (0 keeps the size), no aspect ratio beyond
    `max_aspect_ratio`."""
    base = INJECTION["base"]
    return canonical(
        {
            "image_size": base["image_size"] or None,
            "max_aspect_ratio": base["max_aspect_ratio"],
        }
    )


def base_tars():
    return [base_tar(SimpleNamespace(shard=s)) for s in base_shard_ids()]


def presence_truth(wildcards):
    """A table (person_id, planted) to score the face filter against, when the config names one
    (`injection.presence.truth` is optional: a real corpus has no known truth)."""
    presence = INJECTION["presence"]
    return presence["truth"] if "truth" in presence else []


def injected_levels():
    """Track C's levels N, largest first; none without `injection:`."""
    return injection_levels(INJECTION) if INJECTION else []


def inject_shard_ids():
    """The training shards an injection level writes (one when there is no `injection:`, so the
    rule still parses)."""
    return [f"{i:05d}" for i in range(INJECTION["shards"] if INJECTION else 1)]


def injection_models_of(name):
    return [f"{name}-n{n}" for n in injected_levels()]


def injected_scores(wildcards):
    """The attack scores of architecture ``{name}``'s grid, one model per level."""
    return expand(rules.sweep.output.scores, model=injection_models_of(wildcards.name))


def cohort_min_pairs(wildcards):
    """A member must have a confirmed pair for every level: the largest level's worth."""
    return max(INJECTION["levels"])


def retrieval_model():
    return INJECTION["retrieval"]["model"]


def retrieval_model_inputs(wildcards):
    return model_inputs(SimpleNamespace(model=retrieval_model()))


def retrieval_model_params(wildcards):
    return model_spec(retrieval_model())


def retrieval_queries(wildcards):
    """The identities' photos as the retrieval model encoded them for the attack."""
    folder = f"{RESULTS}/attack/{retrieval_model()}"
    return {
        "queries": f"{folder}/image_emb.npy",
        "photos": f"{folder}/photos.parquet",
    }


def utility_templates(wildcards):
    """The utility's zero-shot templates: none (the script then uses the CLIP paper's 80) unless
    the config names them (`injection.utility.templates` is optional, with no default).
    """
    return INJECTION["utility"].get("templates")


def heldout_tsv(wildcards):
    """CC3M's validation TSV: the held-out pairs' source (downloaded by fetch_source when remote)."""
    return source_path("cc3m", SOURCES["cc3m"]["validation"])


def heldout_limit(wildcards):
    """How many of the validation TSV's rows to download (its first; all when not set)."""
    return INJECTION["utility"].get("n_pairs")


def utility_inputs(wildcards):
    """The labelled evaluation set and held-out pairs the utility table is measured on: the
    pairs acquired from `sources.cc3m.validation`, unless `injection.utility.pairs` names a
    local table."""
    options = INJECTION["utility"]
    inputs = {
        key: options[key]
        for key in ("eval_dir", "classnames", "pairs")
        if key in options
    }
    if "pairs" not in inputs and "validation" in SOURCES["cc3m"]:
        inputs["pairs"] = rules.heldout_pairs.output.pairs
    return inputs


def kept_outputs():
    """Every file that a later job reads, requested by `all` as well.

    Snakemake plans a missing file's producer only for a job that needs to run: a consumer
    whose own output exists does not (snakemake/snakemake#1978). A job that fails or is
    stopped after a change of config or code has had its outputs deleted as it started, so its
    consumers' old results would be called up to date. Requested here, the missing file is
    planned again, and every job downstream of it after it. `tests/test_code_tracking.py`
    checks that this lists every output of the default target's jobs.
    """
    models = model_names()
    trained = [m for m in models if "train" in MODELS[m]]
    wanted = [
        ("identity_plan", {}),
        ("download_identities", {"shard": identity_shard_ids()}),
        ("identities", {}),
        ("search_shard", {"shard": shard_ids()}),
        ("gather_counts", {}),
        ("candidate_pool", {}),
        ("train_clip", {"model": trained}),
        ("encode_prompts", {"model": models}),
        ("encode_photos", {"model": models}),
        ("predict", {"model": models}),
        ("sweep", {"model": models}),
        ("person_stats", {"model": models}),
        ("attack_summary", {}),
        ("stats_summary", {}),
    ]
    if config["search"].get("reference"):
        wanted.append(("compare_counts", {}))
    if any(
        not MODELS[m].get("injection") for m in trained
    ):  # trained on LAION's images
        wanted.append(("download_shard", {"shard": shard_ids()}))
    if INJECTION:
        wanted += [
            ("base_urls", {"shard": base_shard_ids()}),
            ("download_base_shard", {"shard": base_shard_ids()}),
            ("embed_base_shard", {"shard": base_shard_ids()}),
            ("build_index", {}),
            ("retrieve", {}),
            ("face_classifier", {}),
            ("faces_shard", {"shard": base_shard_ids()}),
            ("presence", {}),
            ("pair_urls", {"shard": shard_ids()}),
            ("download_pairs", {"shard": shard_ids()}),
            ("confirm_pairs", {}),
            ("cohort", {}),
            ("inject_level", {"n": injected_levels()}),
            ("utility", {"model": models}),
            ("utility_table", {}),
            ("injection_summary", {}),
        ]
    files = [f"{RESOURCES}/{group}/{name}" for group, name in REMOTE]
    for rule, wildcards in wanted + KEPT:
        files += expand(list(getattr(rules, rule).output), **wildcards)
    return files


def all_targets():
    targets = kept_outputs() + figure_targets()
    targets += [f"{RESULTS}/attack/summary.csv", f"{RESULTS}/stats/summary.csv"]
    targets += [f"{RESULTS}/identities/report.csv", *CHECKS]
    if config["search"].get("reference"):
        targets += [f"{RESULTS}/search/reference_comparison.csv"]
    if INJECTION:
        targets += [
            f"{RESULTS}/inject/summary.csv",
            f"{RESULTS}/faces/filter.json",
            f"{RESULTS}/utility/utility.csv",
        ]
    return targets


onsuccess:
    summary = Path(f"{RESULTS}/attack/headline.txt")
    if summary.exists():
        print(summary.read_text().rstrip())


def audit_slug():
    """The audited person's folder: an ASCII slug and a hash of the whole name, so that names
    which fold alike (accents, other scripts) never share one, and long names still fit.
    """
    from idia.facescrub import person_id

    return person_id(str(config["audit_name"]).strip())


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
    """The models of `models:` (the injection grid's are experiments, not audit targets)."""
    return [{"name": name, **model_spec(name)} for name in config["models"]]
