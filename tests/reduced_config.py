"""Config files cut down to a few experiments and models, for slow tests that run the workflow.

`make test` already runs the whole smoke scale once; the end-to-end, DVC and SLURM tests check
behaviour (reruns, versioning, scheduling) that a few runs show as well as a hundred. Overlays cannot
remove experiments (mappings merge), so the base config and every overlay are rewritten.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "config" / "config.yaml"
SMOKE = ROOT / "config" / "smoke.yaml"


def reduce_config(source: Path, destination: Path, keep: dict[str, list[str] | None]) -> Path:
    """Write ``source`` with only the experiments in ``keep`` (their models limited to the given
    list, or all for None) and the datasets they use; returns ``destination``."""
    config = yaml.safe_load(source.read_text())
    experiments = config.get("experiments", {})
    reduced = {}
    for name, models in keep.items():
        if name in experiments:
            reduced[name] = dict(experiments[name])
            if models is not None and "models" in reduced[name]:
                reduced[name]["models"] = list(models)
    config["experiments"] = reduced
    if "datasets" in config:
        base = yaml.safe_load(BASE.read_text())
        used = {base["experiments"][name]["dataset"] for name in keep}
        config["datasets"] = {k: v for k, v in config["datasets"].items() if k in used}
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(yaml.safe_dump(config, sort_keys=False))
    return destination


def reduced_smoke(folder: Path, keep: dict[str, list[str] | None]) -> list[Path]:
    """[config.yaml, smoke.yaml], both reduced to ``keep``, written into ``folder``."""
    return [reduce_config(BASE, folder / "config.yaml", keep),
            reduce_config(SMOKE, folder / "smoke.yaml", keep)]
