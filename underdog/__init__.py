"""underdog: make small language models rival big ones.

The package is layered (see DESIGN.md): ``lm`` loads, scores and generates; ``tasks`` and ``world`` provide
data; ``train`` is the one training loop; ``methods`` hold one file per method; ``eval`` computes metrics;
``runs`` makes every study resumable; ``cli`` only parses and dispatches.
"""

__version__ = "0.1.0"


class UnderdogError(Exception):
    """An error caused by user input (bad file, bad config, missing model): printed as one line, exit 2."""
