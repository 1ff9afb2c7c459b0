"""The paper scale of some experiments on one GPU machine without Snakemake or network, in one command.

    python3 benchmarks/paper_gpu.py --out OUT [--experiments pendulum_filtering]
        [--concurrency 8] [--compile graph] [--wheels WHEELS_DIR] [--throughput]

Needs python3 with torch, numpy, pandas, pyyaml, pillow (and jsonschema, which --wheels installs
from wheel files into a private folder when it is missing). It writes an overlay (results under
OUT/results, the step mode), simulates the experiments' paper data, trains their whole grid
(models x seeds at config/paper.yaml's settings) with --concurrency runs at once on the GPU through
workflow/scripts/train.py, exactly as the workflow's train rule would, and packs the run folders
into OUT/paper_runs.tar.gz with a manifest. Progress (runs done, elapsed, estimate) goes to stdout,
each run's log to OUT/logs/. With --throughput it first runs benchmarks/gpu_throughput.py and
benchmarks/paper_scale_cost.py (OUT/throughput.json, OUT/paper_cost.json).

Back on the machine with the repository, one command turns the archive into the report:

    make paper-report ARCHIVE=OUT/paper_runs.tar.gz

Exit status 2 on bad input, 1 when a run failed (its log is named).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"


def prepare_python(wheels: str | None, out: Path) -> dict[str, str]:
    """The environment of the child processes: jsonschema from ``wheels`` when it is missing."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        import jsonschema  # noqa: F401, PLC0415
    except ImportError:
        if not wheels:
            sys.exit("error: jsonschema is missing; bring its wheels (README, 'Paper scale on one "
                     "GPU') and pass --wheels DIR")
        site = out / "site-packages"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                        "--target", str(site), *map(str, Path(wheels).glob("*.whl"))], check=True)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        sys.path.insert(0, str(site))
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--experiments", nargs="+", default=["pendulum_filtering"])
    parser.add_argument("--concurrency", type=int, default=8, help="runs at once on the GPU")
    parser.add_argument("--compile", default="graph", choices=("none", "inductor", "graph"),
                        help="training.compile (default graph: CUDA graph capture)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu", "auto"))
    parser.add_argument("--wheels", help="folder of wheels for packages missing here")
    parser.add_argument("--throughput", action="store_true",
                        help="first measure throughput and the projected paper-scale cost")
    parser.add_argument("--extra-config", action="append", default=[],
                        help="more overlays (e.g. fewer epochs for a trial)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    env = prepare_python(args.wheels, out)
    sys.path.insert(0, str(ROOT))
    from harness.config import ConfigError, load_config  # noqa: PLC0415
    from harness.runspec import run_grid  # noqa: PLC0415

    overlay = out / "gpu_overlay.yaml"
    overlay.write_text(f"results_dir: {out / 'results'}\ntraining: {{compile: {args.compile}}}\n")
    configs = [ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml", overlay,
               *map(Path, args.extra_config)]
    try:
        config = load_config(configs)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    unknown = sorted(set(args.experiments) - set(config["experiments"]))
    if unknown:
        print(f"error: unknown experiments {unknown}; valid: {sorted(config['experiments'])}",
              file=sys.stderr)
        return 2
    config_args = [a for c in configs for a in ("--config", str(c))]
    started = time.monotonic()
    if args.throughput:
        for script, name in (("gpu_throughput.py", "throughput"),
                             ("paper_scale_cost.py", "paper_cost")):
            extra = (["--throughput", str(out / "throughput.json")]
                     if name == "paper_cost" else [])
            with open(out / f"{name}.txt", "w") as log:
                subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--json",
                                str(out / f"{name}.json"), *extra], stdout=log,
                               stderr=subprocess.STDOUT, env=env, check=True, cwd=ROOT)
            print((out / f"{name}.txt").read_text(), flush=True)
    for dataset in sorted({config["experiments"][e]["dataset"] for e in args.experiments}):
        print(f"simulating {dataset} ...", flush=True)
        subprocess.run([sys.executable, str(SCRIPTS / "simulate.py"), *config_args,
                        "--dataset", dataset], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    print("measuring claim 7 (efficiency) on this device ...", flush=True)
    subprocess.run([sys.executable, str(SCRIPTS / "efficiency.py"), *config_args,
                    "--device", args.device], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    grid = [run for run in run_grid(config) if run[0] in args.experiments]

    def train(run: tuple[str, str, int]) -> tuple[tuple[str, str, int], int, Path]:
        log = out / "logs" / f"{run[0]}_{run[1]}_seed{run[2]}.log"
        code = subprocess.run([sys.executable, str(SCRIPTS / "train.py"), *config_args,
                               "--experiment", run[0], "--model", run[1], "--seed", str(run[2]),
                               "--device", args.device, "--threads", "1", "--log", str(log)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode
        return run, code, log

    failed = []
    print(f"training {len(grid)} runs, {args.concurrency} at once ...", flush=True)
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        for done, (run, code, log) in enumerate(pool.map(train, grid), 1):
            elapsed = time.monotonic() - started
            eta = elapsed / done * (len(grid) - done)
            print(f"[{done}/{len(grid)}] {'/'.join(map(str, run))}: "
                  f"{'ok' if code == 0 else f'FAILED ({code}), see {log}'}; "
                  f"{elapsed / 60:.1f} min, about {eta / 60:.1f} min left", flush=True)
            if code != 0:
                failed.append(str(log))
    manifest = {"experiments": args.experiments, "runs": len(grid), "failed": failed,
                "compile": args.compile, "concurrency": args.concurrency,
                "wall_seconds": round(time.monotonic() - started, 1),
                "python": platform.python_version(), "host": platform.node()}
    try:
        import torch  # noqa: PLC0415

        manifest |= {"torch": torch.__version__, "device": torch.cuda.get_device_name()
                     if torch.cuda.is_available() else "cpu"}
    except Exception:  # noqa: BLE001 (the manifest is informational)
        pass
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    archive = out / "paper_runs.tar.gz"

    def finished_only(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        """Leave out checkpoints and temporary folders of failed runs."""
        return None if member.name.endswith((".ckpt", ".tmp")) or ".tmp/" in member.name \
            else member

    with tarfile.open(archive, "w:gz") as tar:
        for experiment in args.experiments:
            tar.add(out / "results" / "paper" / "runs" / experiment,
                    arcname=f"paper/runs/{experiment}", filter=finished_only)
        tar.add(out / "results" / "paper" / "efficiency", arcname="paper/efficiency")
        tar.add(out / "manifest.json", arcname="paper/manifest.json")
    print(f"wrote {archive} ({archive.stat().st_size / 2**20:.1f} MB) in "
          f"{manifest['wall_seconds'] / 60:.1f} min; {len(failed)} failed runs", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
