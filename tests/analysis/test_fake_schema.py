"""The fake results follow the real writer's schema, so the analysis tests test the real contract."""

from __future__ import annotations

import analysis_fakes as fake
import pytest


def _types(schema) -> dict[str, object]:
    return {f.name: f.type for f in schema}


def test_fake_schema_matches_the_writer() -> None:
    schema = pytest.importorskip("hdc_ray.results.schema")
    config = pytest.importorskip("hdc_ray.config")
    cfg = config.Config()
    for real, mine in ((schema.trials_schema(cfg), fake.trials_schema()), (schema.history_schema(cfg), fake.history_schema())):
        real_t, mine_t = _types(real), _types(mine)
        assert {k: v for k, v in real_t.items() if not k.startswith("cfg.")} == {
            k: v for k, v in mine_t.items() if not k.startswith("cfg.")
        }
        assert {k: v for k, v in mine_t.items() if k.startswith("cfg.")} == {k: real_t.get(k) for k in mine_t if k.startswith("cfg.")}
