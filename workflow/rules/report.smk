# Aggregate every expected run into reports/{scale}/: tables, metrics.json, claims.md, figures.
# The aggregator fails when a run is missing, so it never writes a partial table. The report()
# marks put the outputs into `snakemake --report reports/{scale}/report.html`.


rule aggregate:
    input:
        metrics=expected_metrics(),
        history=expected_run_files("history.csv"),
        examples=expected_run_files("examples.npz"),
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
        metrics=report(f"{REPORTS}/metrics.json", caption="../report/metrics.rst", category="Summary"),
        claims=report(f"{REPORTS}/claims.md", caption="../report/claims.rst", category="Summary"),
    log:
        f"{LOGS}/aggregate.log",
    params:
        python=PYTHON,
        script=f"{SCRIPTS}/aggregate.py",
        configs=CONFIG_ARGS,
        # results_dir, as the prefix of {results_dir}/{scale}/runs/{experiment}/{model}/{run}/metrics.json
        results=lambda wildcards, input: Path(input.metrics[0]).parents[5],
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    conda:
        SOFTWARE
    threads: 1
    shell:
        "{params.python} {params.script} {params.configs} --results {params.results} "
        "--reference {input.reference} --out {params.out} > {log} 2>&1"
