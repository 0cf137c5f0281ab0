"""The shipped built-in models load offline (no network, no hub) and read facts in context."""

import socket

import pytest

from underdog.lm import load
from underdog.lm.load import BUILTIN_MODELS


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("name", ["builtin", "builtin-large"])
def test_builtin_loads_offline_and_is_small(name, no_network):
    lm = load(name, device="cpu")
    assert lm.info["architecture"] == "llama"
    size = sum(p.stat().st_size for p in BUILTIN_MODELS[name].iterdir())
    assert size <= 50 * 2**20
    assert (BUILTIN_MODELS[name] / "MODEL_CARD.md").is_file()


@pytest.mark.parametrize("name", ["builtin", "builtin-large"])
def test_builtin_reads_facts_in_its_context(name):
    """The shipped weights work: on a fresh evaluation world, the facts in context lift forward and reversal
    questions far above the same questions asked with no context (chance 0.25)."""
    from underdog.pretrain.probe import IclProbe

    lm = load(name, device="cpu")
    probe = IclProbe(seed=4242, per_split=30, splits=("forward", "reversal"), budget=960)
    icl, none = probe(lm), probe(lm, with_context=False)
    assert min(icl.values()) >= 0.7 and max(none.values()) <= 0.5, (icl, none)
