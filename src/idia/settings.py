"""The workflow's settings beyond what its JSON schema can say: the model registry (the models of
`models:` plus track C's grid), the checks that relate one config field to another, and a lookup
that names the missing key.

Pure functions of the validated config (the schema has filled in every default), so that
``workflow/rules/common.smk`` calls them at parse time and the tests call them directly.
"""

from __future__ import annotations

from typing import Any

from idia.templates import config_templates

#: What a model entry of `models:` (or `injection.models:`) must be, said when it is not.
MODEL_KINDS = (
    "needs exactly one of `train:` (trained by the workflow, with `arch:`), `pretrained:` (an "
    "open_clip tag or weight file, with `arch:`) or `spec:` (any backend: "
    "open_clip:ARCH/TAG_OR_FILE, open_clip:hf-hub:ORG/NAME, hf:ORG/NAME_OR_DIR, local:DIR)"
)


def canonical(value: Any) -> Any:
    """A config value with dict keys sorted, recursively: Snakemake sees a dict param as changed
    when only its key order changed, so every dict param goes through here."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def lookup(config: dict, *keys: str) -> Any:
    """``config[keys[0]][keys[1]]...``, canonical; a key the config lacks is an error that names
    its dotted path (the schema fills every default, so only an optional section can be
    missing, e.g. `injection:` for a track C job)."""
    value: Any = config
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            path = ".".join(keys[: depth + 1])
            raise KeyError(
                f"config: {path} is not set, and a job needs it; set it in the config file "
                "(see config/paper.yaml for every setting)"
            )
        value = value[key]
    return canonical(value)


def injection_levels(injection: dict) -> list[int]:
    """Track C's injection levels N, largest first (the order of the grid and its figures)."""
    return sorted(injection["levels"], reverse=True)


def injected_models(injection: dict | None) -> dict[str, dict]:
    """The controlled-injection grid: one trained model per (architecture, level N), named
    ``<architecture>-n<N>``, each carrying ``injection: {model, n}``."""
    if not injection:
        return {}
    return {
        f"{name}-n{n}": {**spec, "injection": {"model": name, "n": n}}
        for name, spec in injection["models"].items()
        for n in injection_levels(injection)
    }


def model_registry(config: dict) -> dict[str, dict]:
    """Every model the workflow attacks: `models:` and track C's grid, each checked to be
    trained, pretrained or named by one spec string."""
    grid = injected_models(config.get("injection"))
    models = {**config["models"], **grid}
    for name, model in models.items():
        if sum(key in model for key in ("train", "pretrained", "spec")) != 1 or (
            "spec" not in model and "arch" not in model
        ):
            raise ValueError(f"config: model {name!r} {MODEL_KINDS}")
    clash = sorted(set(config["models"]) & set(grid))
    if clash:
        raise ValueError(f"config: models {clash} clash with the injection grid's names")
    return models


def check_config(config: dict) -> None:
    """The cross-field rules the schema cannot express (the models' own are
    :func:`model_registry`'s); each error names the values and what to change."""
    injection = config.get("injection")
    if injection:
        retrieval = injection["retrieval"]["model"]
        if retrieval not in config["models"]:
            raise ValueError(
                f"config: injection.retrieval.model {retrieval!r} is not one of `models:` "
                f"({', '.join(config['models'])})"
            )
        lacking = [
            key
            for key, present in (
                ("sources.cc3m", "cc3m" in config["sources"]),
                ("injection.utility.eval_dir", "eval_dir" in injection["utility"]),
                (
                    "sources.cc3m.validation or injection.utility.pairs",
                    "pairs" in injection["utility"]
                    or "validation" in config["sources"].get("cc3m", {}),
                ),
            )
            if not present
        ]
        if lacking:
            raise ValueError(
                f"config: track C (injection:) needs {', '.join(lacking)}; see config/paper.yaml"
            )
    attack = config["attack"]
    n_templates = len(config_templates(attack["templates"]))
    if attack["tau"] > n_templates:
        raise ValueError(
            f"config: attack.tau={attack['tau']} but the attack has {n_templates} prompt "
            "templates: a person could never be called a member. Set attack.tau between 1 and "
            f"{n_templates}."
        )
    min_photos = config["identities"]["min_photos"]
    if attack["short"] == "error" and min_photos < attack["k_max"]:
        raise ValueError(
            f"config: identities.min_photos={min_photos} is below "
            f"attack.k_max={attack['k_max']}: a person kept with fewer photos than "
            "k_max would stop the attack. Raise min_photos or set attack.short: clamp."
        )


def utility_models(models: dict[str, dict]) -> dict[str, dict]:
    """The utility table's row labels: each model's architecture (or its spec string) and its
    injection level N (None outside the grid)."""
    return {
        name: {
            "arch": spec["arch"] if "arch" in spec else spec.get("spec"),
            "n": spec["injection"]["n"] if "injection" in spec else None,
        }
        for name, spec in models.items()
    }
