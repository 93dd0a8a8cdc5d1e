"""Ahead-of-time compilation with a cache, so compile time is measured apart from run time.

``compiled(fn, *args)`` lowers and compiles an ``equinox.filter_jit`` function once per
(static arguments, array shapes and dtypes) and returns ``(executable, compile_seconds)``;
later calls with the same structure get the cached executable and 0.0.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax

_CACHE: dict = {}


def _key(fn, args):
    dyn, stat = eqx.partition(args, eqx.is_array)
    leaves, treedef = jax.tree_util.tree_flatten(stat)
    shapes = tuple((x.shape, str(x.dtype)) for x in jax.tree_util.tree_leaves(dyn))
    return (fn, treedef, tuple(map(repr, leaves)), shapes, jax.tree_util.tree_structure(dyn))


def compiled(fn, *args):
    key = _key(fn, args)
    if key in _CACHE:
        return _CACHE[key], 0.0
    t = time.perf_counter()
    exe = fn.lower(*args).compile()
    _CACHE[key] = exe
    return exe, time.perf_counter() - t
