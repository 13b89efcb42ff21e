"""Kubernetes resource quantities ("64Mi", "1G", "129e6", "500m", "0.5"), as
k8s.io/apimachinery/pkg/api/resource parses them, exactly (Decimal, no float rounding)."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from ..errors import InvalidArgument

_BINARY = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
            "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18}
_DIGITS = set("0123456789")


def _error(text) -> InvalidArgument:
    return InvalidArgument(f'quantities must match the regular expression '
                           f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}")


def parse_quantity(q: str | int | float) -> Decimal:
    """The value of a quantity, in base units (bytes, cores)."""
    if isinstance(q, bool):
        raise _error(q)
    if isinstance(q, int):
        return Decimal(q)
    if isinstance(q, float):
        if not math.isfinite(q):
            raise _error(q)
        return Decimal(str(q))
    if not isinstance(q, str):
        raise _error(q)
    text = q.strip()
    i = 0
    if text[:1] in ("+", "-"):
        i = 1
    j = i
    while j < len(text) and (text[j] in _DIGITS or text[j] == "."):
        j += 1
    number, suffix = text[:j], text[j:]
    digits = number[i:]
    if not digits or digits == "." or digits.count(".") > 1:
        raise _error(q)
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise _error(q) from None
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix in _DECIMAL:
        return value * _DECIMAL[suffix]
    if suffix[:1] in ("e", "E"):
        exp = suffix[1:]
        sign = exp[:1] if exp[:1] in ("+", "-") else ""
        body = exp[len(sign):]
        if body and set(body) <= _DIGITS:
            return value.scaleb(int(sign + body))
    raise _error(q)


def memory_bytes(q: str | int | float) -> int:
    """A memory quantity in whole bytes (rounded up, as Kubernetes' Value() does)."""
    v = parse_quantity(q)
    if v < 0:
        raise InvalidArgument(f"memory quantity must not be negative: {q!r}")
    return int(v.to_integral_value(rounding="ROUND_CEILING"))


def cpu_millis(q: str | int | float) -> int:
    """A CPU quantity in millicores (rounded up, as Kubernetes' MilliValue() does)."""
    v = parse_quantity(q)
    if v < 0:
        raise InvalidArgument(f"cpu quantity must not be negative: {q!r}")
    return int((v * 1000).to_integral_value(rounding="ROUND_CEILING"))


def cpu_cores(q: str | int | float) -> float:
    """A CPU quantity in cores (docker's --cpus), at millicore precision."""
    return cpu_millis(q) / 1000


def cpu_shares(q: str | int | float) -> int:
    """cgroup v1 cpu.shares from a CPU request, as the kubelet computes it (2 at least)."""
    return max(2, cpu_millis(q) * 1024 // 1000)


_SI_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BIN_SUFFIX = [("Ei", 2 ** 60), ("Pi", 2 ** 50), ("Ti", 2 ** 40), ("Gi", 2 ** 30), ("Mi", 2 ** 20), ("Ki", 2 ** 10)]


def format_quantity(q: str | int | float | Decimal) -> str:
    """A quantity in Kubernetes' canonical form (Quantity.String()): "1.5" -> "1500m", "1000m" ->
    "1", "2048Mi" -> "2Gi", "1.5Gi" -> "1536Mi"; binary suffixes stay binary while the value is
    whole, else decimal; values are rounded up to the nano."""
    v = q if isinstance(q, Decimal) else parse_quantity(q)
    binary = isinstance(q, str) and q.strip()[-2:] in _BINARY
    v = (v * 10 ** 9).to_integral_value(rounding="ROUND_CEILING") / Decimal(10 ** 9)
    if v == 0:
        return "0"
    sign, v = ("-", -v) if v < 0 else ("", v)
    if binary and v == v.to_integral_value():
        n = int(v)
        for suffix, size in _BIN_SUFFIX:
            if n >= size and n % size == 0:
                return f"{sign}{n // size}{suffix}"
        if n < 1024:
            return f"{sign}{n}"
    for exp in (18, 15, 12, 9, 6, 3, 0, -3, -6, -9):
        m = v / (Decimal(10) ** exp)
        if m == m.to_integral_value() and m >= 1:
            return f"{sign}{int(m)}{_SI_SUFFIX[exp]}"
    return f"{sign}{int(v * 10 ** 9)}n"
