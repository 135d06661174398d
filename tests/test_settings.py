"""The config checks the schema cannot express and the model registry (idia.settings), on the
shipped configs as the schema fills them in and on broken variants of them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from idia.settings import (
    canonical,
    check_config,
    injected_models,
    lookup,
    model_registry,
    utility_models,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def load(name: str) -> dict:
    """A shipped config as the workflow sees it: validated, the schema's defaults filled in."""
    config = yaml.safe_load((ROOT / name).read_text())
    validate(config, SCHEMA)
    return config


@pytest.fixture
def tiny() -> dict:
    return load("tests/config/tiny.yaml")


@pytest.mark.parametrize(
    "name", ["config/config.yaml", "config/paper.yaml", "tests/config/tiny.yaml"]
)
def test_shipped_configs_pass(name: str):
    config = load(name)
    check_config(config)
    assert set(config["models"]) <= set(model_registry(config))


def test_the_schema_fills_the_defaults_rules_read_without_a_fallback(tiny: dict):
    del tiny["attack"]["batch_size"], tiny["attack"]["device"], tiny["attack"]["short"]
    del tiny["injection"]["utility"], tiny["models"]["tiny"]["train"]["gpus"]
    validate(tiny, SCHEMA)
    assert (tiny["attack"]["batch_size"], tiny["attack"]["device"]) == (256, "auto")
    assert tiny["attack"]["short"] == "error" and tiny["injection"]["utility"] == {}
    assert lookup(tiny, "models", "tiny", "train", "gpus") == 0


def test_the_grid_is_one_model_per_architecture_and_level_largest_first(tiny: dict):
    injection = copy.deepcopy(tiny["injection"])
    injection["levels"] = [1, 5, 2]
    grid = injected_models(injection)
    assert list(grid) == ["c-n5", "c-n2", "c-n1"]
    assert grid["c-n2"]["injection"] == {"model": "c", "n": 2}
    assert grid["c-n2"]["train"] == injection["models"]["c"]["train"]
    assert injected_models(None) == {}
    assert list(model_registry(tiny)) == ["tiny", "c-n2", "c-n1"]


def test_a_model_name_clashing_with_the_grid_is_refused(tiny: dict):
    tiny["models"]["c-n2"] = tiny["models"]["tiny"]
    with pytest.raises(ValueError, match=r"models \['c-n2'\] clash with the injection grid"):
        model_registry(tiny)


@pytest.mark.parametrize(
    "model",
    [{"arch": "RN50"}, {"arch": "RN50", "pretrained": "openai", "spec": "hf:x/y"},
     {"pretrained": "openai"}],
)  # fmt: skip
def test_a_model_must_be_exactly_one_kind(tiny: dict, model: dict):
    tiny["models"]["odd"] = model
    with pytest.raises(ValueError, match=r"model 'odd' needs exactly one of `train:`"):
        model_registry(tiny)


def test_tau_above_the_number_of_templates_is_refused(tiny: dict):
    tiny["attack"]["tau"] = 22
    with pytest.raises(ValueError, match="attack.tau=22 but the attack has 21 prompt templates"):
        check_config(tiny)
    tiny["attack"]["templates"] = ["a photo of {}", "{}"]
    tiny["attack"]["tau"] = 3
    with pytest.raises(ValueError, match="attack.tau=3 but the attack has 2 prompt templates"):
        check_config(tiny)
    tiny["attack"]["tau"] = 2
    check_config(tiny)


def test_min_photos_below_k_max_is_refused_unless_short_persons_are_clamped(tiny: dict):
    tiny["identities"]["min_photos"] = 2
    with pytest.raises(ValueError, match=r"identities.min_photos=2 is below attack.k_max=4"):
        check_config(tiny)
    tiny["attack"]["short"] = "clamp"
    check_config(tiny)


def test_track_c_names_what_it_lacks(tiny: dict):
    del tiny["sources"]["cc3m"]
    with pytest.raises(
        ValueError,
        match=r"needs sources.cc3m, sources.cc3m.validation or injection.utility.pairs;",
    ):
        check_config(tiny)
    tiny["sources"]["cc3m"] = {"train": "train.tsv"}
    tiny["injection"]["utility"]["pairs"] = "pairs.parquet"  # a local table instead
    check_config(tiny)


def test_the_retrieval_model_must_be_one_of_models(tiny: dict):
    tiny["injection"]["retrieval"]["model"] = "c-n2"
    with pytest.raises(ValueError, match=r"injection.retrieval.model 'c-n2' is not one of"):
        check_config(tiny)


def test_lookup_is_canonical_and_names_the_missing_key(tiny: dict):
    assert list(lookup(tiny, "haar")) == sorted(tiny["haar"])
    assert canonical({"b": [{"d": 1, "c": 2}], "a": 0}) == {"a": 0, "b": [{"c": 2, "d": 1}]}
    del tiny["injection"]
    with pytest.raises(KeyError, match=r"config: injection is not set"):
        lookup(tiny, "injection", "retrieval", "k")
    with pytest.raises(KeyError, match=r"config: attack.nope is not set"):
        lookup(tiny, "attack", "nope")


def test_utility_rows_name_the_architecture_or_spec_and_the_level(tiny: dict):
    models = model_registry(tiny) | {"b32": {"spec": "hf:openai/clip-vit-base-patch32"}}
    assert utility_models(models) == {
        "tiny": {"arch": "idia-vit-xs", "n": None},
        "c-n2": {"arch": "idia-vit-xs", "n": 2},
        "c-n1": {"arch": "idia-vit-xs", "n": 1},
        "b32": {"arch": "hf:openai/clip-vit-base-patch32", "n": None},
    }
