# A first job to run on a new cluster: does a job see its GPUs, and does torch?
#   snakemake gpu_smoke --profile profiles/slurm


rule gpu_smoke:
    output:
        f"{RESULTS}/gpu_smoke.txt",
    log:
        script_log("gpu_smoke"),
    conda:
        "../../envs/idia.yaml"
    resources:
        gpu=1,
        mem_mb=2000,
        runtime=10,
    shell:
        "(nvidia-smi -L || echo 'nvidia-smi: not found or no driver'; "
        'python -c \'import torch; print("torch", torch.__version__, '
        '"cuda devices:", torch.cuda.device_count())\') > {output} 2> {log}'
