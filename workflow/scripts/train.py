"""Train and evaluate one (experiment, model, seed) into its run folder.

    python workflow/scripts/train.py --config config/config.yaml --experiment pendulum_filtering \
        --model rkn --seed 0 [--config config/smoke.yaml] [--threads 1] [--device auto]

Data must exist (make it with workflow/scripts/simulate.py). Exit status 2 marks bad input
(config, names, data) or a result that must not be published; the message says what to fix. No
partial run folder is ever left behind.

Training writes a checkpoint beside the run folder every training.checkpoint_minutes and when the
process receives SIGTERM or SIGINT; then it exits with status 75 (interrupted: run the same command
again to resume). A second Ctrl-C stops at once (status 130). A checkpoint that cannot be used
(damaged, changed after it was written, or written for other settings, code or training data) is
refused with status 2 and the way to discard it; --discard-bad-checkpoint deletes such a
checkpoint instead and starts the run from epoch 1 (said in the log).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

# A SIGTERM that arrives while the heavy imports below load (SLURM may signal a job early) is kept
# and honoured as soon as training can write a checkpoint, instead of killing the process.
EARLY_SIGNALS: list[int] = []
if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: EARLY_SIGNALS.append(signum))

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a plain checkout too

import torch  # noqa: E402

from datasets.store import DatasetError, load_split  # noqa: E402
from harness.config import ConfigError, load_config  # noqa: E402
from harness.io import os_error_message  # noqa: E402
from harness.checkpoint import (CheckpointError, RunInterrupted,  # noqa: E402
                                install_stop_handlers)
from harness.runner import (RunExistsError, execute_run, run_checkpointer,  # noqa: E402
                            select_device)
from harness.runspec import resolve_run  # noqa: E402
from harness.training import BadResultError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config file; repeat for overlays")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--run-dir", help="output folder (default: results/{scale}/runs/{experiment}/{model}/seed{seed})")
    parser.add_argument("--data-dir", help="dataset folder (default: results/{scale}/datasets/{dataset})")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    parser.add_argument("--discard-bad-checkpoint", action="store_true",
                        help="delete a checkpoint that cannot be used (damaged, or of other "
                             "settings, code or data) and start the run from epoch 1")
    parser.add_argument("--log", help="also write the log to this file")
    return parser.parse_args(argv)


def progress_bar(total_epochs: int):
    """A tqdm bar on interactive terminals, nothing otherwise (logs carry the epochs)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=total_epochs, unit="epoch", file=sys.stderr)
    return lambda epoch, total: (bar.update(1), bar.close() if epoch == total else None)


# Exit status of a run stopped by SIGTERM or SIGINT after writing its checkpoint (EX_TEMPFAIL:
# "try again"), distinct from 2 (bad input).
EXIT_INTERRUPTED = 75


def fail(message: str) -> int:
    """Log and print an error; exit status 2 (bad input, see the module docstring)."""
    logging.getLogger("train").error("%s", message)
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handlers = [logging.StreamHandler()] + ([logging.FileHandler(args.log)] if args.log else [])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers)
    if args.threads < 1:
        return fail(f"--threads must be at least 1, got {args.threads}")
    try:
        config = load_config(args.config)
        spec = resolve_run(config, args.experiment, args.model, args.seed)
        results_dir = config.get("results_dir", "results")
        data_dir = Path(args.data_dir) if args.data_dir else spec.data_dir(results_dir)
        try:
            train_split, test_split = load_split(data_dir, "train"), load_split(data_dir, "test")
        except DatasetError as err:
            configs = " ".join(f"--config {path}" for path in args.config)
            raise DatasetError(f"{err} With the workflow's script: python workflow/scripts/simulate.py "
                               f"{configs} --dataset {spec.dataset}") from err
        device = select_device(args.device)
        torch.set_num_threads(args.threads)
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
        run_dir = Path(args.run_dir) if args.run_dir else spec.run_dir(results_dir)
        checkpointer = run_checkpointer(spec, run_dir,
                                        discard_bad=args.discard_bad_checkpoint)
        restore_handlers = install_stop_handlers(checkpointer)
        for signum in EARLY_SIGNALS:
            checkpointer.request_stop(signum)
        try:
            execute_run(spec, train_split=train_split, test_split=test_split, run_dir=run_dir,
                        device=device, force=args.force,
                        progress=progress_bar(spec.training.epochs), checkpointer=checkpointer)
        finally:
            restore_handlers()
    except RunInterrupted as err:
        logging.getLogger("train").warning("%s", err)
        print(f"interrupted: {err}; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ConfigError, DatasetError, RunExistsError, BadResultError, CheckpointError,
            RuntimeError, ValueError) as err:
        return fail(str(err))
    except OSError as err:  # e.g. a --run-dir inside a read-only folder, a full disk
        return fail(os_error_message(err, "the run folder (--run-dir) must lie in a writable "
                                          "folder and the data folder must be readable; nothing "
                                          "was written"))
    except KeyboardInterrupt:
        print("interrupted: no run folder was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
