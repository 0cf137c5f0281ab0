"""A small built-in world shared by the method tests (a fresh one per test; world generation is seeded)."""

import pytest

from underdog.world import make_world


@pytest.fixture
def small_world():
    return make_world(11, n_dimensions=4, n_syllogisms=12, n_categories=16, n_families=3)
