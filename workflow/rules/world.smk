# The embedded world: it renders identities and corpora and publishes them in the public sources'
# formats (FaceScrub lists, per-person URL lists, LAION metadata, CC3M TSVs, name lists), served
# by a proxy on 127.0.0.1 while the run lasts. `sources:` in config/config.yaml names them; the
# acquisition rules fetch them like the paper's. Only this file knows the world exists.

if "world" in config:

    WORLD_DIR = f"{RESULTS}/world"

    rule world:
        input:
            code=package("world.py"),
        output:
            truth=f"{WORLD_DIR}/truth.parquet",
            summary=f"{WORLD_DIR}/world.json",
            web=directory(f"{WORLD_DIR}/web"),
            lists=[
                f"{WORLD_DIR}/facescrub/facescrub_actors.txt",
                f"{WORLD_DIR}/facescrub/facescrub_actresses.txt",
            ],
            extra=directory(f"{WORLD_DIR}/extra"),
            checksums=f"{WORLD_DIR}/web.sha256",
        log:
            script_log("world/world"),
        benchmark:
            f"{RESULTS}/benchmarks/world/world.tsv"
        conda:
            "../../envs/idia.yaml"
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            # track C's `base:` has its own rule: changing it leaves track L's world alone
            world=canonical({k: v for k, v in config["world"].items() if k != "base"}),
        script:
            "../scripts/world.py"

    rule world_base:
        input:
            code=package("world_base.py"),
        output:
            summary=f"{WORLD_DIR}/base/base.json",
            truth=f"{WORLD_DIR}/base/truth.parquet",
            planted=f"{WORLD_DIR}/base/planted.parquet",
            web=directory(f"{WORLD_DIR}/base/web"),
            checksums=f"{WORLD_DIR}/base/web.sha256",
            eval_dir=directory(f"{WORLD_DIR}/base/eval/classes"),
        log:
            script_log("world/base"),
        benchmark:
            f"{RESULTS}/benchmarks/world/base.tsv"
        conda:
            "../../envs/idia.yaml"
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            world=canonical(
                {
                    key: config["world"][key]
                    for key in (
                        "seed",
                        "n_identities",
                        "caption_templates",
                        "image_size",
                    )
                }
            ),
            base=config_provider("world", "base"),
        script:
            "../scripts/world_base.py"

    rule haar_rate:
        input:
            identities=identities_table(),
            code=package("haar.py"),
        output:
            f"{WORLD_DIR}/haar.json",
        log:
            script_log("world/haar"),
        conda:
            "../../envs/idia.yaml"
        resources:
            mem_mb=2000,
            runtime=20,
        params:
            haar=canonical(config["haar"]),
        script:
            "../scripts/haar.py"

    rule truth_check:
        input:
            counts=f"{RESULTS}/search/counts.parquet",
            truth=f"{WORLD_DIR}/truth.parquet",
            downloads=f"{RESULTS}/download/summary.json",
            identities=f"{RESULTS}/identities/report.csv",
            summary=f"{WORLD_DIR}/world.json",
            code=package("truth_check.py"),
        output:
            f"{RESULTS}/search/truth_check.json",
        log:
            script_log("search/truth_check"),
        conda:
            "../../envs/idia.yaml"
        resources:
            mem_mb=1000,
            runtime=5,
        script:
            "../scripts/truth_check.py"

    CHECKS += [f"{WORLD_DIR}/haar.json", f"{RESULTS}/search/truth_check.json"]
    # what the world's rules and truth_check read, kept current like every other input
    KEPT += [("world", {}), ("download_report", {})]
    if INJECTION:
        KEPT.append(("world_base", {}))

    onstart:
        from idia.world import BASE_HOST, WORLD_HOST
        from idia.worldweb import start, use_proxy

        proxy, _server = start(
            {WORLD_HOST: f"{WORLD_DIR}/web", BASE_HOST: f"{WORLD_DIR}/base/web"},
            log="logs/world/web.log",
        )
        use_proxy(proxy)
        print(
            f"idia: the embedded world's sources are served at http://{WORLD_HOST}/ and "
            f"http://{BASE_HOST}/ through the proxy {proxy} (access log: logs/world/web.log)"
        )
