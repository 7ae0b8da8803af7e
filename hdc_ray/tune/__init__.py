"""The only Ray Tune / Optuna code: spec translation, the per-trial driver, the Tuner."""
