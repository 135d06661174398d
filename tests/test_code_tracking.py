"""Every rule that runs a script declares, as inputs, exactly the idia modules the script imports
(directly or through other idia modules), so that changing a module reruns exactly its jobs.

The rules are read the way Snakemake reads them (the workflow is parsed, no DAG is built), so
the check holds whatever way a rule spells its code inputs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from idia.codedeps import script_modules

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "idia"
RULES = ROOT / "workflow" / "rules"
# The configs to parse the workflow with, together defining every rule (the world's rules exist
# only when the config has a `world:`; the paper's config needs its downloaded files to parse).
CONFIGS = (ROOT / "tests" / "config" / "tiny.yaml",)

# Parses the workflow with Snakemake's API once per config file (in a child process: the API
# changes directory and sets up logging) and writes {rule: {"script": path, "inputs": [paths]}}
# as JSON; a rule defined under both configs must declare the same inputs under both.
LOAD_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

snakefile, workdir, out, *configfiles = map(Path, sys.argv[1:])
rules = {}
for configfile in configfiles:
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[configfile]),
            snakefile=snakefile,
            workdir=workdir,
        )._workflow
        for rule in workflow.rules:
            if rule.script:
                found = {
                    "script": str(Path(str(rule.basedir)) / rule.script),
                    "inputs": sorted(str(f) for f in rule.input if isinstance(f, str)),
                }
                if rules.setdefault(rule.name, found)["script"] != found["script"]:
                    sys.exit(f"rule {rule.name} runs another script under {configfile.name}")
out.write_text(json.dumps(rules))
"""


def script_rules_in_text() -> list[str]:
    """Names of the rules whose body has a ``script:`` directive, read from the rule files' text
    (cheap, at collection time, so that each rule is its own test)."""
    names, derived = set(), []
    for smk in sorted(RULES.glob("*.smk")):
        # a rule may be indented under an `if` (rules that exist for one source only)
        for block in re.split(r"^(?=\s*(?:rule \w+:|use rule ))", smk.read_text(), flags=re.M):
            head = re.match(r"\s*rule (\w+):", block)
            if head and re.search(r"^\s+script:", block, flags=re.M):
                names.add(head.group(1))
            derived += re.findall(r"^\s*use rule (\w+) as (\w+)", block, flags=re.M)
    names |= {new for old, new in derived if old in names}  # `use rule A as B` runs A's script
    return sorted(names)


# Rules whose hand-kept `package(...)` list differed from their script's imports when this test
# was written (issue 14): every script imports idia.smk, which no rule declared. Strict: a rule
# that is fixed must leave this set (empty it when common.smk derives the lists).
KNOWN_DRIFT: set[str] = set()


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> dict[str, dict]:
    """Each script rule's script path and input paths, as the parsed workflow holds them."""
    tmp = tmp_path_factory.mktemp("rules")
    out = tmp / "rules.json"
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_RULES, str(ROOT / "Snakefile"), str(tmp), str(out), *CONFIGS],
        capture_output=True, text=True, env=env, cwd=tmp, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"parsing the workflow failed:\n{result.stderr[-4000:]}"
    return json.loads(out.read_text())


def declared_modules(inputs: list[str]) -> list[str]:
    """The idia modules among a rule's inputs (Snakemake may hand out source-cache copies whose
    paths end in ``src/idia/<module>.py``)."""
    found = (re.search(r"(?:^|/)src/idia/(\w+)\.py$", p.replace(os.sep, "/")) for p in inputs)
    return sorted({m.group(1) for m in found if m})


def test_every_script_rule_is_checked(rules: dict[str, dict]):
    # the parametrized test below reads rule names from the text: it must see every script rule
    parsed, text = set(rules), set(script_rules_in_text())
    assert parsed == text, f"only parsed: {sorted(parsed - text)}, only in text: {text - parsed}"
    assert len(rules) >= 30


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, reason="issue 14: hand-kept list"))
        if r in KNOWN_DRIFT
        else r
        for r in script_rules_in_text()
    ],
)
def test_rule_declares_exactly_the_modules_its_script_imports(rules: dict[str, dict], rule: str):
    script = Path(rules[rule]["script"])
    imported = script_modules(script, SRC)
    declared = declared_modules(rules[rule]["inputs"])
    missing = sorted(set(imported) - set(declared))  # a change to these would not rerun it
    extra = sorted(set(declared) - set(imported))  # a change to these would rerun it for nothing
    assert (missing, extra) == ([], []), (
        f"rule {rule} runs {script.name}, which imports idia modules {imported} (directly or "
        f"not); the rule declares {declared}: missing {missing}, never imported {extra}. "
        f"Derive the rule's code inputs with idia.codedeps.script_modules"
    )


def where_things_live() -> list[tuple[str, list[str], list[str]]]:
    """The README's "Where things live" table: (rule file, scripts, package modules) per row."""
    text = (ROOT / "README.md").read_text().split("### Where things live", 1)[1]
    rows = []
    for line in text.split("\n\n", 3)[2].splitlines()[2:]:
        _, rule_file, scripts, modules = (cell.strip() for cell in line.strip("|").split("|"))
        names = [re.findall(r"`([^`]+)`", cell) for cell in (rule_file, scripts, modules)]
        rows.append((names[0][0], names[1], names[2]))
    return rows


def test_the_readme_says_where_things_live_and_every_path_in_it_is_real():
    rows = where_things_live()
    for rule_file, scripts, modules in rows:
        smk = RULES / rule_file
        ran = sorted(set(re.findall(r"\.\./scripts/(\w+\.py)", smk.read_text())))
        assert sorted(scripts) == ran, f"README: {rule_file} runs {ran}, the table says {scripts}"
        # a module listed is one the row's scripts import (directly or not), or the rule file does
        used = set(re.findall(r"from idia\.(\w+) import", smk.read_text()))
        for script in scripts:
            used |= set(script_modules(ROOT / "workflow" / "scripts" / script, SRC))
        for module in modules:
            assert (SRC / module).is_file(), f"README: src/idia/{module} does not exist"
            assert module.removesuffix(".py") in used, f"README: {rule_file} never uses {module}"
    script_files = {p.name for p in RULES.glob("*.smk") if "../scripts/" in p.read_text()}
    assert {r for r, _, _ in rows} == script_files
