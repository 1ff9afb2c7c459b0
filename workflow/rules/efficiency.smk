# Claim 7 (efficiency): parameters, time and memory per filter step of the recurrent cores against
# the latent size m (harness/efficiency.py). No training and no data: seconds at smoke scale. The
# file's name carries a hash of the efficiency settings and the measured models' entries, so an edit
# of them measures anew; it runs where the training runs run (their threads, memory and GPU), since
# its timings describe that device. The aggregator only reads the file.


rule efficiency:
    output:
        f"{RESULTS}/{SCALE}/efficiency/efficiency-{{ehash}}.json",
    log:
        f"{LOGS}/efficiency/efficiency-{{ehash}}.log",
    params:
        python=PYTHON,
        script=f"{SCRIPTS}/efficiency.py",
        configs=CONFIG_ARGS,
        out=lambda wildcards, output: checked_efficiency_file(output[0]),
        device=train_device(config["resources"]["train"]["gpu"]),
    conda:
        SOFTWARE
    threads: config["resources"]["train"]["threads"]
    resources:
        mem_mb=config["resources"]["train"]["mem_mb"],
        runtime=config["resources"]["train"]["runtime"],
        gpu=config["resources"]["train"]["gpu"],
    shell:
        "{params.python} {params.script} {params.configs} --out {params.out} --threads {threads} "
        "--device {params.device} > {log} 2>&1"
