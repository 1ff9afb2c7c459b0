"""The training harness: config, model registry, training loop, evaluation metrics, runner, io."""
