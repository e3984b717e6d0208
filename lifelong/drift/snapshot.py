"""River detectors as plain data: a checkpoint holds no pickled object, yet a restored detector is the same.

Why not pickle: checkpoints are read with ``torch.load(weights_only=True)`` or as JSON, which refuse arbitrary
objects by design. A restricted unpickler that allowed river's classes would still have to allow what pickle uses
to rebuild them (``copyreg._reconstructor``, ``builtins.getattr`` for PageHinkley's bound method ``_test_drift``),
and ``getattr`` alone is enough to escape any allowlist. So this module walks a detector's attributes and writes a
tree of dicts, lists, strings, numbers, booleans and None, valid JSON and loadable with ``weights_only=True``.

Rebuilding is limited to what a river detector is made of:

* classes defined in ``river`` or its submodules (looked up by module and name, never a dunder, must be a class):
  Python ones are created with ``cls.__new__`` and get their ``__dict__`` back, so no constructor or other code
  runs; river's Rust objects (ADWIN's window, EWMean) are rebuilt from their own ``__getnewargs__`` values and
  ``__setstate__`` bytes, the same protocol river uses for pickling, minus pickle;
* ``collections.deque``, ``random.Random`` (its ``getstate()`` tuple), bytes, tuples, lists, dicts, non-finite
  floats, and bound methods of the object being rebuilt (by method name, checked to be a function of its class).

Anything else raises ``TypeError`` when saving, so a river upgrade that adds a new kind of attribute fails loudly at
the first checkpoint instead of restoring a detector that silently differs. Shared references are kept (an object
met twice is written once and referred to by number), so aliasing inside a detector survives a round trip.

>>> from river.drift import PageHinkley
>>> ph = PageHinkley()
>>> for v in [0.0, 1.0] * 20:
...     ph.update(v)
>>> twin = load(json.loads(json.dumps(dump(ph))))
>>> (twin._sum_increase, twin._test_drift.__name__) == (ph._sum_increase, ph._test_drift.__name__)
True
"""

from __future__ import annotations

import base64
import collections
import importlib
import json  # noqa: F401 - used by the doctest
import math
import random
import types
from typing import Any

_ALLOWED_ROOT = "river"


def _is_river(cls: type) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return module == _ALLOWED_ROOT or module.startswith(_ALLOWED_ROOT + ".")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _river_class(name: str) -> type:
    """The river class named ``module:qualname``; anything outside river, or not a class, is refused."""
    module_name, _, qualname = name.partition(":")
    if not (module_name == _ALLOWED_ROOT or module_name.startswith(_ALLOWED_ROOT + ".")):
        raise ValueError(f"refusing to rebuild {name!r}: only river classes are allowed")
    parts = qualname.split(".")
    if not qualname or any(not part.isidentifier() or part.startswith("__") for part in parts):
        raise ValueError(f"refusing to rebuild {name!r}: bad class name")
    obj: Any = importlib.import_module(module_name)
    for part in parts:
        obj = getattr(obj, part)
    if not isinstance(obj, type) or obj.__module__ != module_name:
        raise ValueError(f"refusing to rebuild {name!r}: not a class of {module_name}")
    return obj


class _Dumper:
    def __init__(self) -> None:
        self.ids: dict[int, int] = {}
        self.keep: list[Any] = []  # holds every memoised object so ids stay unique while dumping

    def _memo(self, obj: Any) -> dict[str, Any] | int:
        key = id(obj)
        if key in self.ids:
            return {"~ref": self.ids[key]}
        self.ids[key] = len(self.ids)
        self.keep.append(obj)
        return self.ids[key]

    def dump(self, obj: Any, owner: Any = None) -> Any:
        if obj is None or isinstance(obj, bool | int | str):
            return obj
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"~float": repr(float(obj))}
        if isinstance(obj, bytes):
            return {"~bytes": base64.b64encode(obj).decode("ascii")}
        if isinstance(obj, tuple):
            return {"~tuple": [self.dump(v, owner) for v in obj]}
        if isinstance(obj, types.MethodType):
            if obj.__self__ is not owner:
                raise TypeError(f"cannot snapshot a method bound to another object: {obj!r}")
            return {"~method": obj.__func__.__name__}
        memo = self._memo(obj)
        if isinstance(memo, dict):
            return memo
        if isinstance(obj, list):
            return {"~list": [self.dump(v, owner) for v in obj], "id": memo}
        if isinstance(obj, collections.deque):
            return {"~deque": [self.dump(v, owner) for v in obj], "maxlen": obj.maxlen, "id": memo}
        if isinstance(obj, dict):
            return {"~dict": [[self.dump(k, owner), self.dump(v, owner)] for k, v in obj.items()], "id": memo}
        if type(obj) is random.Random:
            return {"~random": self.dump(obj.getstate()), "id": memo}
        cls = type(obj)
        if not _is_river(cls):
            raise TypeError(f"cannot snapshot {cls.__module__}.{cls.__qualname__}: not a river object")
        if hasattr(obj, "__dict__"):
            attrs = {str(k): self.dump(v, obj) for k, v in vars(obj).items()}
            return {"~object": _qualified(cls), "attrs": attrs, "id": memo}
        state = obj.__getstate__()
        args = obj.__getnewargs__() if hasattr(obj, "__getnewargs__") else ()
        if not isinstance(state, bytes):
            raise TypeError(f"cannot snapshot native {_qualified(cls)}: its state is not bytes")
        return {"~native": _qualified(cls), "args": self.dump(tuple(args)), "state": self.dump(state), "id": memo}


class _Loader:
    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}

    def _keep(self, data: dict[str, Any], obj: Any) -> Any:
        self.objects[int(data["id"])] = obj
        return obj

    def load(self, data: Any, owner: Any = None) -> Any:
        if data is None or isinstance(data, bool | int | float | str):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"not a snapshot node: {type(data).__name__}")
        if "~float" in data:
            text = data["~float"]
            if text not in ("inf", "-inf", "nan"):
                raise ValueError(f"bad float {text!r}")
            return float(text)
        if "~bytes" in data:
            return base64.b64decode(data["~bytes"])
        if "~tuple" in data:
            return tuple(self.load(v, owner) for v in data["~tuple"])
        if "~ref" in data:
            return self.objects[int(data["~ref"])]
        if "~method" in data:
            name = data["~method"]
            if owner is None or name.startswith("__") or not isinstance(
                getattr(type(owner), name, None), types.FunctionType
            ):
                raise ValueError(f"bad method reference {name!r}")
            return getattr(owner, name)
        if "~list" in data:
            out: list[Any] = self._keep(data, [])
            out.extend(self.load(v, owner) for v in data["~list"])
            return out
        if "~deque" in data:
            maxlen = data["maxlen"]
            dq = self._keep(data, collections.deque(maxlen=None if maxlen is None else int(maxlen)))
            dq.extend(self.load(v, owner) for v in data["~deque"])
            return dq
        if "~dict" in data:
            mapping: dict[Any, Any] = self._keep(data, {})
            for key, value in data["~dict"]:
                mapping[self.load(key, owner)] = self.load(value, owner)
            return mapping
        if "~random" in data:
            rng = self._keep(data, random.Random())
            rng.setstate(self.load(data["~random"]))
            return rng
        if "~object" in data:
            cls = _river_class(data["~object"])
            obj = self._keep(data, cls.__new__(cls))
            obj.__dict__.update({k: self.load(v, obj) for k, v in data["attrs"].items()})
            return obj
        if "~native" in data:
            cls = _river_class(data["~native"])
            if cls.__dictoffset__:  # a Python class: rebuilt from attributes above, never by calling it
                raise ValueError(f"{data['~native']} is not a native river class")
            obj = self._keep(data, cls(*self.load(data["args"])))
            obj.__setstate__(self.load(data["state"]))
            return obj
        raise ValueError(f"unknown snapshot node with keys {sorted(data)}")


def dump(obj: Any) -> Any:
    """A plain-data tree (JSON-able, ``weights_only``-loadable) that :func:`load` turns back into ``obj``."""
    return _Dumper().dump(obj)


def load(data: Any) -> Any:
    """Rebuild what :func:`dump` wrote; only river classes and a few builtins can come out."""
    return _Loader().load(data)
