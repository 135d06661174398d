# The single-person audit: a folder of photos and a name, against every model of the config.
#   snakemake audit --config audit_photos=DIR audit_name="First Last"


rule audit_person:
    input:
        unpack(audit_inputs),
        candidates=rules.candidate_pool.output[0],
        code=package("audit.py"),
    output:
        json=f"{RESULTS}/audit/{{slug}}/audit.json",
        html=report(
            f"{RESULTS}/audit/{{slug}}/audit.html",
            caption="../report/audit.rst",
            category="Audit",
        ),
    log:
        script_log("audit/{slug}"),
    conda:
        "../../envs/idia.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        photos=config_provider("audit_photos"),
        name=config_provider("audit_name"),
        models=audit_models,
        templates=config["attack"]["templates"],
        tau=config["attack"]["tau"],
        namesakes=config["audit_namesakes"],
        alpha=config["audit_alpha"],
        seed=config["candidates"]["seed"],
        haar=canonical(config["haar"]),
        device=config["attack"]["device"],
    script:
        "../scripts/audit.py"
