# Simulate each dataset once per scale; every model and seed trains on the same files.


rule simulate:
    output:
        train=f"{RESULTS}/{SCALE}/datasets/{{dataset}}/train.npz",
        test=f"{RESULTS}/{SCALE}/datasets/{{dataset}}/test.npz",
        meta=f"{RESULTS}/{SCALE}/datasets/{{dataset}}/meta.json",
    log:
        f"{LOGS}/simulate/{{dataset}}.log",
    params:
        python=PYTHON,
        script=f"{SCRIPTS}/simulate.py",
        configs=CONFIG_ARGS,
        out=lambda wildcards, output: os.path.dirname(output.meta),
    conda:
        SOFTWARE
    threads: 1
    shell:
        "{params.python} {params.script} {params.configs} --dataset {wildcards.dataset} "
        "--out {params.out} > {log} 2>&1"
