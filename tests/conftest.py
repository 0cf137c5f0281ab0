"""Shared fixtures: tiny models saved to local dirs (``tiny_models``), and one torch thread per test."""

from __future__ import annotations

import pytest
import torch

from tests.tiny_models import save_model_dir


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, especially on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory):
    return save_model_dir(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory):
    return save_model_dir(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture(scope="session", params=["llama", "gpt2"])
def tiny_lm(request, llama_dir, gpt2_dir):
    from underdog.lm import load

    return load(llama_dir if request.param == "llama" else gpt2_dir, device="cpu")


@pytest.fixture
def small_world():
    """A small built-in world (a fresh one per test; world generation is seeded)."""
    from underdog.world import make_world

    return make_world(11, n_dimensions=4, n_syllogisms=12, n_categories=16, n_families=3)
