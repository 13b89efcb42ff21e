"""Container names: docker's rules, and a generated adjective_surname when none is given."""

from __future__ import annotations

import os

from ...errors import InvalidArgument

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _ALNUM | frozenset("_.-")

_LEFT = ("admiring", "bold", "brave", "busy", "calm", "clever", "cool", "dazzling", "eager",
         "elastic", "epic", "festive", "focused", "gallant", "gifted", "happy", "hopeful",
         "jolly", "keen", "kind", "laughing", "lucid", "modest", "nifty", "nostalgic", "optimistic",
         "peaceful", "quirky", "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "trusting",
         "vibrant", "wizardly", "youthful", "zealous", "zen")
_RIGHT = ("archimedes", "babbage", "bell", "bohr", "curie", "darwin", "dijkstra", "einstein",
          "euler", "faraday", "fermi", "feynman", "galileo", "gauss", "hopper", "hypatia", "kepler",
          "knuth", "lamarr", "lovelace", "maxwell", "meitner", "newton", "noether", "pascal",
          "pike", "ritchie", "shannon", "thompson", "torvalds", "turing", "volta", "wing", "wozniak")


def check(name: str) -> str:
    name = name.lstrip("/")
    if len(name) < 2 or name[0] not in _ALNUM or not set(name) <= _REST:
        raise InvalidArgument(f'Invalid container name ("{name}"), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return name


def generate(attempt: int = 0) -> str:
    r = int.from_bytes(os.urandom(4), "little")
    name = f"{_LEFT[r % len(_LEFT)]}_{_RIGHT[(r >> 8) % len(_RIGHT)]}"
    return name if attempt < 5 else f"{name}{(r >> 16) % 100}"
