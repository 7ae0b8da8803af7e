"""Sweep results in Parquet, Ray-free: the versioned schema, row building from plain values, the atomic writer.

What speaks Tune (the live callback, ``trial_params``, export from a Tune experiment) lives in ``hdc_ray.tune``
and imports from here, never the other way round. The format is documented in ``docs/results-schema.md``.
"""
