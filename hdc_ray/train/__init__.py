"""Training: methods and their loss terms, batches and views, the loop, checkpoints (no Ray here)."""
