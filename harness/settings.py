"""Optimisation settings of a run: ``TrainConfig`` (the config's ``training`` section)."""

from __future__ import annotations

from dataclasses import dataclass

CLIP_MODES = ("per_tensor", "global", "none")
SELECTION_RULES = ("best_val", "final")
# training.compile: the eager step (reference), the per-time-step function compiled, or the whole
# step captured in a CUDA graph (harness.step).
COMPILE_MODES = ("none", "inductor", "graph")
# glibc allocator settings the workflow gives every training job (environment only: results are
# bit-identical with and without). Without them glibc returns the large, short-lived buffers of a
# training step to the kernel and faults them in again on the next step: about 37,000 page faults
# and 80-100 ms of system time per E1 step on a 2-core CPU machine, about 0.5 ms with them
# (README, "Speed"). Buffers up to 32 MiB stay on the heap (glibc's largest mmap threshold), the
# heap is trimmed only beyond 2 GiB free, and it grows in steps of 256 MiB.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "2147483648",
                 "MALLOC_TOP_PAD_": "268435456"}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (docs/experiments.md#training-protocol; defaults: TF-master E1)."""

    epochs: int = 500
    batch_size: int = 50
    learning_rate: float = 1e-3
    # Keras' Adam epsilon; PyTorch's default is 1e-8 (docs/experiments.md#training-protocol).
    adam_eps: float = 1e-7
    # per_tensor: clip each gradient tensor's norm separately (Keras clipnorm, TF-master);
    # global: one norm over all gradients (TF-icml); none: no clipping (PyTorch port).
    clip_mode: str = "per_tensor"
    clip_value: float = 5.0
    # Fraction of the training sequences held out (the last ones) for model selection.
    val_fraction: float = 0.1
    # best_val: keep the epoch with the lowest validation loss; final: the last epoch.
    model_selection: str = "best_val"
    eval_batch_size: int = 100
    # Minutes between training checkpoints (0: none; SIGTERM/SIGINT still write one). Not part of
    # a run's identity: changing it neither renames run folders nor refuses a checkpoint.
    checkpoint_minutes: float = 10.0
    # How the training step runs (harness.step): none (eager, the reference and the CPU
    # default), inductor (torch.compile of the per-time-step function), graph (CUDA graph).
    compile: str = "none"
    # Truncated back-propagation through time (TF-icml;
    # docs/experiments.md#truncated-back-propagation-through-time): 0 back-propagates through
    # whole sequences; L > 0 cuts each batch into consecutive windows of L steps (the last may be
    # shorter), each starting from the state the model reached at the end of the previous one,
    # passed on detached, with one optimiser step per window.
    bptt_length: int = 0
    # Early stopping (off at 0): stop once the validation loss has not improved by more than
    # early_stopping_min_delta for early_stopping_patience epochs; the run keeps the epoch that
    # model_selection picks among those trained and records where it stopped (harness.training).
    early_stopping_patience: int = 0
    early_stopping_min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.clip_mode not in CLIP_MODES:
            raise ValueError(f"clip_mode {self.clip_mode!r} is not one of {CLIP_MODES}")
        if self.model_selection not in SELECTION_RULES:
            raise ValueError(f"model_selection {self.model_selection!r} is not one of {SELECTION_RULES}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be at least 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile {self.compile!r} is not one of {COMPILE_MODES}")
        if self.checkpoint_minutes < 0:
            raise ValueError(f"checkpoint_minutes must be >= 0, got {self.checkpoint_minutes}")
        if self.early_stopping_patience < 0 or not self.early_stopping_min_delta >= 0:
            raise ValueError("early_stopping_patience (epochs; 0: off) and "
                             "early_stopping_min_delta must be >= 0, got "
                             f"{self.early_stopping_patience} and {self.early_stopping_min_delta}")
        if self.bptt_length < 0:
            raise ValueError(f"bptt_length must be >= 0 (0: whole sequences), "
                             f"got {self.bptt_length}")
