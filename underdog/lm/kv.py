"""The KV-cache keyword of a transformers forward call, across the versions underdog supports.

transformers 5.0-5.23 take and return the cache as ``past_key_values``; 5.24 renamed it ``cache`` (the old name
warns) and 5.40 drops the old name. Every forward that reuses a cache goes through ``cache_kwargs`` and
``returned_cache``, so the rest of underdog names neither.
"""

from __future__ import annotations

from typing import Any

import transformers
from packaging.version import Version

CACHE_ARG = "cache" if Version(transformers.__version__) >= Version("5.24") else "past_key_values"


def cache_kwargs(cache: Any) -> dict[str, Any]:
    """The keyword argument that hands ``cache`` to a model's forward."""
    return {CACHE_ARG: cache}


def returned_cache(output: Any) -> Any:
    """The cache a forward called with ``use_cache=True`` returned."""
    return getattr(output, CACHE_ARG)
