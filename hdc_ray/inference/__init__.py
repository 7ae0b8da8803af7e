"""Inference: a trained checkpoint applied to new images (``hdc-ray predict``) and scored on labelled
folders (``hdc-ray evaluate``). Pure torch/numpy, never Ray: ``hdc_ray.distributed.predict`` runs the same
functions on Ray Data.
"""
