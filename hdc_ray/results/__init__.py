"""Sweep results in Parquet: the versioned schema, row building, the atomic writer, the Tune callback, export.

``schema``, ``rows`` and ``writer`` are pure (no Ray); ``callback`` and ``export`` read Tune's records.
The format is documented in ``docs/results-schema.md``.
"""
