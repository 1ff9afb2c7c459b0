# Train and evaluate one (experiment, model, seed). The run folder's name carries the hash of the
# run's resolved config (seed{seed}-{hash}); train_data() refuses a hash that is not the current one.
# train.py writes the folder atomically (temporary sibling, then rename), so --force lets it replace
# the folder Snakemake creates for the outputs. The outputs are every file of a run folder
# (harness.runner.RUN_FILES; a test keeps the two lists equal): the folder is the only hand-off.


rule train:
    input:
        unpack(train_data),
    output:
        metrics=run_file("metrics.json"),
        config=run_file("config.json"),
        model=run_file("model.pt"),
        history=run_file("history.csv"),
        meta=run_file("meta.json"),
        examples=run_file("examples.npz"),
        calibration=run_file("calibration.csv"),
    log:
        f"{LOGS}/train/{{experiment}}/{{model}}/seed{{seed}}-{{hash}}.log",
    params:
        python=PYTHON,
        script=f"{SCRIPTS}/train.py",
        configs=CONFIG_ARGS,
        run_dir=lambda wildcards, output: os.path.dirname(output.metrics),
        data_dir=lambda wildcards, input: os.path.dirname(input.meta),
        device=train_device(config["resources"]["train"]["gpu"]),
    conda:
        SOFTWARE
    threads: config["resources"]["train"]["threads"]
    resources:
        mem_mb=config["resources"]["train"]["mem_mb"],
        runtime=config["resources"]["train"]["runtime"],
        gpu=config["resources"]["train"]["gpu"],
        gpu_slots=config["resources"]["train"]["gpu_slots"],
    shell:
        f"{ALLOCATOR} "
        "{params.python} {params.script} {params.configs} --experiment {wildcards.experiment} "
        "--model {wildcards.model} --seed {wildcards.seed} --run-dir {params.run_dir} "
        "--data-dir {params.data_dir} --threads {threads} --device {params.device} --force "
        "> {log} 2>&1"
