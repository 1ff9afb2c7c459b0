# Simulate each dataset once per scale; every model and seed trains on the same files. The folder's
# name carries a hash of the dataset's settings, so an edit of them simulates a new folder.


rule simulate:
    output:
        train=f"{RESULTS}/{SCALE}/datasets/{{dataset}}-{{dhash}}/train.npz",
        test=f"{RESULTS}/{SCALE}/datasets/{{dataset}}-{{dhash}}/test.npz",
        meta=f"{RESULTS}/{SCALE}/datasets/{{dataset}}-{{dhash}}/meta.json",
    log:
        f"{LOGS}/simulate/{{dataset}}-{{dhash}}.log",
    params:
        python=PYTHON,
        script=f"{SCRIPTS}/simulate.py",
        configs=CONFIG_ARGS,
        out=lambda wildcards, output: checked_dataset_dir(wildcards, output.meta),
    conda:
        SOFTWARE
    threads: 1
    shell:
        "{params.python} {params.script} {params.configs} --dataset {wildcards.dataset} "
        "--out {params.out} > {log} 2>&1"
