"""A light stand-in for dataclasses on the CLI's hot path.

Importing dataclasses pulls in inspect and costs ~10 ms, a fifth of the whole
`skiff run` budget. A ``Record`` takes its fields from the class annotations
(in order, through the bases) and their defaults from class attributes; list
and dict defaults are copied per instance.
"""

from __future__ import annotations


class Record:
    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name in klass.__dict__.get("__annotations__", {}):
                if not name.startswith("_") and name not in names:
                    names.append(name)
        cls._fields = tuple(names)

    def __init__(self, *args, **kw):
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes {len(self._fields)} arguments")
        for name, value in zip(self._fields, args):
            kw[name] = value
        for name in self._fields:
            if name in kw:
                value = kw.pop(name)
            else:
                try:
                    value = getattr(type(self), name)
                except AttributeError:
                    raise TypeError(f"{type(self).__name__}: missing field {name!r}") from None
                if isinstance(value, (list, dict)):
                    value = type(value)(value)
            setattr(self, name, value)
        if kw:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(kw)}")

    def to_dict(self) -> dict:
        return {n: getattr(self, n) for n in self._fields}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**{k: v for k, v in d.items() if k in cls._fields})

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self._fields))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._fields)})"
