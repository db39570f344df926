"""Label vocabularies shared by the renderer, the dataset readers and the models."""

from __future__ import annotations

__all__ = ["EXPRESSIONS"]

#: Expression classes by index, in AffectNet's order: the 7 basic expressions of RAF-DB and
#: FERPlus are indices 0-6, contempt (AffectNet, FERPlus) is 7. The renderer's expression
#: categories and every dataset reader use these indices.
EXPRESSIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "sadness",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)
