"""Whether Snakemake's lock of a working directory is stale: exit 0 (stale) or 1 (not stale).

    python workflow/scripts/lock_is_stale.py [--directory DIR]

Snakemake locks its working directory while it runs (files in .snakemake/locks/) and removes the
lock when it ends; a Snakemake killed with SIGKILL (or a lost session) leaves the lock behind, and
the next run stops with a LockException. The lock is stale when it exists and no Snakemake process
whose working directory is DIR is alive (psutil, a dependency of Snakemake, lists them). `make
pipeline` and `make runs` then remove it with Snakemake's own `snakemake --unlock`, so the same
command resumes. Jobs a killed Snakemake left running (workflow/scripts/*.py in DIR) keep the
lock: they are listed, to be waited for or stopped first. A Snakemake of the same folder on
another machine (a shared file system) cannot be seen from here: run only one at a time there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psutil


def is_snakemake(cmdline: list[str]) -> bool:
    """A process running Snakemake: its program or script is named snakemake, or python -m
    snakemake (jobs Snakemake starts for itself included)."""
    names = [Path(arg).name for arg in cmdline[:3]]
    return "snakemake" in names or any(a == "-m" and b == "snakemake"
                                       for a, b in zip(cmdline, cmdline[1:]))


def is_job(cmdline: list[str]) -> bool:
    """A job of this workflow (python workflow/scripts/train.py ..., and simulate, efficiency,
    aggregate), which a killed Snakemake leaves running."""
    return any(arg.endswith(".py") and Path(arg).parent.as_posix().endswith("workflow/scripts")
               for arg in cmdline[1:3])


def live_processes(directory: Path) -> tuple[list[int], list[str]]:
    """(pids of the Snakemake processes, "pid: command" of the workflow's jobs) whose working
    directory is ``directory``."""
    snakemakes, jobs = [], []
    ourselves = {os.getpid()} | {process.pid for process in psutil.Process().parents()}
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = process.info
        if info["pid"] in ourselves or not info["cmdline"] or info["cwd"] is None:
            continue  # (another user's process, whose cwd we cannot read, cannot hold our lock)
        if Path(info["cwd"]).resolve() != directory:
            continue
        if is_snakemake(info["cmdline"]):
            snakemakes.append(info["pid"])
        elif is_job(info["cmdline"]):
            jobs.append(f"{info['pid']}: {' '.join(info['cmdline'])[:120]}")
    return snakemakes, jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", default=".", help="Snakemake's working directory")
    args = parser.parse_args(argv)
    directory = Path(args.directory).resolve()
    locks = directory / ".snakemake" / "locks"
    if not (locks.is_dir() and any(locks.iterdir())):
        return 1
    snakemakes, jobs = live_processes(directory)
    if snakemakes:
        return 1  # a running Snakemake holds it: Snakemake itself says so
    if jobs:
        print(f"{locks} holds the lock of a Snakemake that no longer runs, but jobs it started "
              "still do:\n  " + "\n  ".join(jobs) + "\nwait for them to end (or stop them with "
              "kill PID), then run the same command again", file=sys.stderr)
        return 1
    print(f"{locks} holds the lock of a Snakemake that no longer runs (killed?): removing it "
          "with snakemake --unlock", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
