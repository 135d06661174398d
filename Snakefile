# idia: does a CLIP model know this person? The Identity Inference Attack as a workflow.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# The workflow and its jobs import the idia package beside this Snakefile, whichever checkout
# the environment was installed from: the code that runs is the code whose changes are tracked.
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
# Set here, not read: no `envvars:` (the linter takes an item assignment for a use)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])),
    # Jobs end when this process does, even when it is killed (idia.smk.end_with_workflow)
    IDIA_WORKFLOW_PID=str(os.getpid()),
)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/world.smk"
include: "workflow/rules/sources.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/retrieve.smk"
include: "workflow/rules/faces.smk"
include: "workflow/rules/inject.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/utility.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/gpu.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule figures:
    input:
        figure_targets(),


rule train_all:
    input:
        trained_models(),


rule audit:
    input:
        audit_target,
