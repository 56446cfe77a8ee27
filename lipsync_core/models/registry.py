"""Model registry: the cards (:mod:`.card`) that the architecture modules declare beside them, by name.

A card's builder takes the (already unwrapped, prefix-stripped) state dict and returns an un-loaded module
whose configuration is read from the tensors' shapes where the architecture allows (e.g. the RRDBNet block
count), so reduced test checkpoints go through exactly the same path as real ones.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from .card import ModelCard


def _collect() -> dict[str, ModelCard]:
    """Every card declared by a module of this package (``CARD`` or ``CARDS``), in module-name order."""
    cards: dict[str, ModelCard] = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name == "registry":
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        declared = getattr(module, "CARDS", ()) or ((module.CARD,) if hasattr(module, "CARD") else ())
        for card in declared:
            if card.name in cards:
                raise ValueError(f"two cards named {card.name!r}")
            cards[card.name] = card
    return cards


#: The architectures, by registry name.
CARDS: dict[str, ModelCard] = _collect()
#: The registry's former name for :data:`CARDS` (the weights manifest, notebooks and tools read it).
SPECS = CARDS


@dataclass(frozen=True)
class FileSpec:
    """A weight that is not a torch checkpoint (no state dict, nothing to build): how the weights cache checks it.

    Its manifest ``arch`` is ``name``; the code that uses the file reads it itself (e.g. ``face.anime``).
    """

    name: str
    validator: str  # "module:function", function(path) raising LipsyncError when the file is unusable
    description: str

    def validate(self, path: Path) -> None:
        module, func = self.validator.split(":")
        getattr(importlib.import_module(module), func)(Path(path))


FILE_SPECS: dict[str, FileSpec] = {s.name: s for s in (
    FileSpec("opencv_cascade", "lipsync_core.models.cascade:validate", "OpenCV cascade classifier (XML)"),
)}
