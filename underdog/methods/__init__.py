"""Studies and the registry that lists them.

A study is one module here exposing ``NAME``, its pydantic ``Recipe`` (a ``config.Strict``), ``run(recipe, log)
-> results`` (the dict it wrote to ``results.json``), ``demo_recipe(out, model, seed, quick) -> Recipe`` (its
part of ``underdog demo``) and ``DEMO_SECONDS`` (what that part takes on 2 CPU cores, for the demo's ETA).
Optionally ``COMMANDS = {"fit": handler(argv) -> exit code}`` adds ``underdog <name> fit ...``. The blocks that
studies share (ICL contexts, augmentation, self-evaluation, teachers, fine-tuning) live in ``methods.parts``
and never import a study. Adding a study = its module + one line in ``STUDIES`` (or ``register`` at run time);
the CLI subcommand, ``underdog run RECIPE.yaml`` (``method: <name>``) and the demo come from this registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from underdog import UnderdogError


@dataclass(frozen=True)
class Study:
    name: str
    module: str  # import path of the study's module
    help: str  # one line for `underdog --help` (the module is imported only when the study is used)
    demo: bool = True  # part of `underdog demo`

    def load(self) -> ModuleType:
        module = importlib.import_module(self.module)
        for attr in ("NAME", "Recipe", "run"):
            if not hasattr(module, attr):
                raise TypeError(f"study module {self.module} lacks {attr} (see underdog.methods)")
        return module


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("generalization", "underdog.methods.generalization",
          "ICL vs fine-tuning vs augmented fine-tuning, by split (Lampinen et al. 2025)"),
    Study("aspire", "underdog.methods.aspire", "ASPIRE selective prediction: learned self-evaluation vs baselines"),
    Study("explain", "underdog.methods.explain", "Orca 2 explanation tuning: teacher -> student, cautious reasoning"),
    Study("tools", "underdog.methods.tools", "Toolformer-style tool use: small model + calculator vs larger model"),
    Study("align", "underdog.methods.align", "DPO (TRL) and learned abstention vs ASPIRE on the same questions"),
    Study("train", "underdog.methods.sft", "supervised fine-tuning on JSONL (LoRA, prompt, full); saves a loadable model", demo=False),
    Study("scale", "underdog.methods.scale", "emergence and scaling: a model family, sharp vs smooth metrics, fitted laws"),
)}


def register(name: str, module: str, help: str, demo: bool = True) -> Study:
    """Add a study at run time (a plugin outside this package); returns its entry."""
    STUDIES[name] = Study(name, module, help, demo)
    return STUDIES[name]


def get_study(name: str) -> ModuleType:
    """The study module registered as ``name``; an unknown name is a user error listing the known ones."""
    if name not in STUDIES:
        raise UnderdogError(f"unknown method {name!r}; known: {', '.join(STUDIES)}")
    return STUDIES[name].load()
