# Recurrent Kalman Networks benchmark: simulated data -> training runs -> reports/{scale}/.
#
#   snakemake --profile profiles/default --configfile config/config.yaml config/smoke.yaml
#
# The config (config/config.yaml plus a scale overlay) defines the grid of experiments x models x
# seeds; workflow/rules/common.smk validates it and derives every path from harness.config.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/efficiency.smk"
include: "workflow/rules/report.smk"


onstart:
    check_cluster_settings()
    print(f"scale {SCALE}: {len(expected_metrics())} training runs ({' + '.join(CONFIG_FILES)})")
    if "expected_duration" in config:
        print(f"expected duration: {config['expected_duration']}")


# Cheap steps stay on the submitting machine under a cluster executor (profiles/slurm).
localrules:
    aggregate,


rule all:
    input:
        expected_metrics(),
        expected_reports(),
    default_target: True
