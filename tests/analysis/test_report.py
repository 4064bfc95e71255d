"""The report's cluster map: a density image above DENSITY_ABOVE points, coloured by each bin's cluster."""

from __future__ import annotations

import base64

import numpy as np
import polars as pl
import pytest

from curate.analysis import report
from curate.analysis.report import density_image

RED, BLUE = [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]


def test_density_image_colours_bins_by_their_most_common_cluster():
    # 1000 points of cluster 0 at (0, 0) with 3 of cluster 1 among them, 1000 of cluster 1 at (10, 10),
    # and one lone point of cluster 0 at (0, 10)
    x = np.r_[np.zeros(1003), np.full(1000, 10.0), 0.0]
    y = np.r_[np.zeros(1003), np.full(1000, 10.0), 10.0]
    c = np.r_[np.zeros(1000, int), np.ones(1003, int), 0]
    img, ext = density_image(x, y, c, bins=11, palette=np.array([RED, BLUE]))
    assert img.shape == (11, 11, 3) and ext[0] < x.min() < x.max() < ext[1]
    assert img[0, 0] == pytest.approx(RED)  # rows are y (origin lower), densest bin at full strength
    assert img[10, 10] == pytest.approx(BLUE, abs=1e-3)  # 1000 points vs the densest 1003
    assert img[5, 5] == pytest.approx([1.0, 1.0, 1.0])  # empty and far from everything: white
    lone = img[10, 0]
    assert lone[0] == 1.0 and 0.5 < lone[1] == lone[2] < 0.9  # one point: a faint red
    halo = img[9, 1]  # an empty bin next to the lone point takes its colour at half strength
    assert halo[0] == 1.0 and lone[1] < halo[1] < 1.0


def test_map_chart_draws_a_density_image_above_the_limit(monkeypatch):
    rng = np.random.default_rng(0)
    c = rng.integers(0, 3, 600)
    df = pl.DataFrame({"x": c * 5.0 + rng.normal(size=600), "y": rng.normal(size=600), "cluster": c,
                       "topic": [f"topic{k}, word{k}" for k in c.tolist()]})
    monkeypatch.setattr(report, "DENSITY_ABOVE", 100)
    calls = []
    real = report.density_image
    monkeypatch.setattr(report, "density_image", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    png = base64.b64decode(report.map_chart(df))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and calls == [1]
