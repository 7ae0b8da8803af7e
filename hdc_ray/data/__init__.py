"""Data: the synthetic fetal-ultrasound benchmark, readers for FUGC / PSFH, label-budget splits, assembly.

``build_data(cfg.data)`` is the entry point of a run; the rest is exported for tools and tests.
"""

from __future__ import annotations

from hdc_ray.data.dataset import ArrayDataset, DataBundle, build_data, default_cache_dir, resize_image, resize_mask
from hdc_ray.data.errors import DataError
from hdc_ray.data.mha import MhaGeometry, read_mha, read_mha_image, write_mha
from hdc_ray.data.readers import Sample, SampleFile, fugc_files, load_sample, psfh_files, read_fugc, read_psfh
from hdc_ray.data.splits import Split, make_split, split_hash
from hdc_ray.data.synthetic import (
    ACQUISITION,
    DIFFICULTIES,
    GENERATOR_VERSION,
    PRESETS,
    SyntheticSpec,
    generate_dataset,
    generate_sample,
    write_fugc_layout,
    write_psfh_layout,
)
from hdc_ray.data.tasks import CLASS_NAMES

__all__ = [
    "ACQUISITION",
    "CLASS_NAMES",
    "DIFFICULTIES",
    "GENERATOR_VERSION",
    "PRESETS",
    "ArrayDataset",
    "DataBundle",
    "DataError",
    "MhaGeometry",
    "Sample",
    "SampleFile",
    "Split",
    "SyntheticSpec",
    "build_data",
    "default_cache_dir",
    "fugc_files",
    "generate_dataset",
    "generate_sample",
    "load_sample",
    "make_split",
    "psfh_files",
    "read_fugc",
    "read_mha",
    "read_mha_image",
    "read_psfh",
    "resize_image",
    "resize_mask",
    "split_hash",
    "write_fugc_layout",
    "write_mha",
    "write_psfh_layout",
]
