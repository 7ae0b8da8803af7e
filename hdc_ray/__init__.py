"""hdc-ray: train and tune HDC (Hierarchical Distillation for multi-level noisy Consistency) on Ray."""

__version__ = "0.1.0"
