# Aggregate every expected run and the claim-7 measurements into results/{scale}/report/ (REPORTS):
# tables, metrics.json, claims.md, figures, efficiency.csv|md|png. Snakemake deletes these outputs
# before it reruns the rule, so the published reports/{scale} is not among them: `make pipeline`
# adds report.html and replaces reports/{scale} with this folder in one atomic step.
# The aggregator reads only the run folders it is given (their config.json, metrics.json, history,
# calibration and examples) and fails when one is missing, so it never writes a partial table. The
# report() marks put the outputs into `snakemake --report results/{scale}/report/report.html`.


rule aggregate:
    input:
        metrics=expected_metrics(),
        history=expected_run_files("history.csv"),
        examples=expected_run_files("examples.npz"),
        calibration=expected_run_files("calibration.csv"),
        run_configs=expected_run_files("config.json"),
        efficiency=expected_efficiency(),
        reference=reference_numbers(),
        # Any config edit (model order, seeds, names) re-aggregates; results rerun only by hash.
        configs=CONFIG_FILES,
    output:
        tables=[
            report(path, caption="../report/table.rst", category="Tables", labels={"file": Path(path).name})
            for path in report_files("tables")
        ],
        markdown=report_files("markdown"),
        figures=[
            report(path, caption="../report/figures.rst", category="Figures", labels={"figure": Path(path).stem})
            for path in report_files("figures")
        ],
        efficiency=[
            report(path, caption="../report/efficiency.rst", category="Efficiency")
            for path in report_files("efficiency")
        ],
        metrics=report(f"{REPORTS}/metrics.json", caption="../report/metrics.rst", category="Summary"),
        claims=report(f"{REPORTS}/claims.md", caption="../report/claims.rst", category="Summary"),
    log:
        f"{LOGS}/aggregate.log",
    params:
        python=PYTHON,
        script=f"{SCRIPTS}/aggregate.py",
        configs=CONFIG_ARGS,
        efficiency=lambda wildcards, input: " ".join(f"--efficiency {p}" for p in input.efficiency),
        run_dirs=lambda wildcards, input: " ".join(os.path.dirname(p) for p in input.metrics),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    conda:
        SOFTWARE
    threads: 1
    shell:
        "{params.python} {params.script} {params.configs} --reference {input.reference} "
        "{params.efficiency} --out {params.out} {params.run_dirs} > {log} 2>&1"
