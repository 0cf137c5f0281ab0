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
