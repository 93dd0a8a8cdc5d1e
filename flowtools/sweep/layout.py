"""What a results store is made of, as plain values: a grid's layout.

The grid (``flowtools.sweep.grid``) computes its ``Layout`` once (``Grid.layout()``); the
store (``flowtools.sweep.store``) creates, checks and writes its arrays from it alone, so
the store never imports the grid and never recomputes the grid's definition:

* ``definition`` — ``Grid.definition()``: everything that determines the results, as JSON
  values (a store is keyed by it and the library versions, ``definition_key``);
* ``coordinates`` — per axis, in the order of the dims: its name, section and values;
* ``variables`` — the stored per-cell variables (the family's, for the grid's outputs),
  in order, with the sizes of their extra dims in ``extra_sizes``;
* ``chunks`` — cells per stored chunk along each axis (one chunk = one task).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FORMAT_VERSION", "Coordinate", "Layout", "definition_key"]

#: the version of a store's layout (``Grid.definition()["format_version"]``)
FORMAT_VERSION = 1


def definition_key(definition: Mapping, versions: Mapping | None = None) -> str:
    """SHA-256 of the canonical JSON of a grid's ``definition`` and the library ``versions``."""
    text = json.dumps({"definition": definition, "versions": dict(versions or {})},
                      sort_keys=True, allow_nan=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Coordinate:
    """One axis of a grid: its name, section ([problem], [init], [integrator]) and values."""

    name: str
    section: str
    values: tuple


@dataclass(frozen=True)
class Layout:
    """A grid's store layout (see the module docstring): the grid's name, description,
    source file and family name as given; its ``definition``, ``coordinates``,
    ``variables`` (name → ``flowtools.sweep.family.Variable``), ``extra_sizes`` (the extra
    dims ``param`` and ``save``) and ``chunks``."""

    name: str
    description: str
    source: str
    family: str
    definition: dict
    coordinates: tuple[Coordinate, ...]
    variables: dict
    extra_sizes: dict
    chunks: tuple[int, ...]

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.coordinates)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c.values) for c in self.coordinates)

    def key(self, versions: Mapping | None = None) -> str:
        """``definition_key`` of this layout's definition (``Grid.key``)."""
        return definition_key(self.definition, versions)
