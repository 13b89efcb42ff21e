"""Kubernetes quantities: memory and CPU, as the apimachinery parser reads them."""

from decimal import Decimal

import pytest

from skiff.agent.quantity import cpu_cores, cpu_millis, cpu_shares, memory_bytes, parse_quantity
from skiff.errors import InvalidArgument


@pytest.mark.parametrize("text,expected", [
    ("64Mi", 64 * 2 ** 20), ("1G", 10 ** 9), ("128974848", 128974848), ("129e6", 129_000_000),
    ("123Mi", 128974848), ("1Ki", 1024), ("1k", 1000), ("2Gi", 2 * 2 ** 30), ("1.5Gi", 3 * 2 ** 29),
    ("1E3", 1000), ("5e+2", 500), (" 7 ", 7), (1024, 1024), ("0", 0), ("1Ti", 2 ** 40),
    ("1P", 10 ** 15), ("129e-1", 13),  # 12.9 bytes: rounded up
    ("128974848000m", 128974848), ("1.1", 2),
])
def test_memory(text, expected):
    assert memory_bytes(text) == expected


@pytest.mark.parametrize("text,millis", [
    ("500m", 500), ("1", 1000), ("0.5", 500), ("2", 2000), ("100m", 100), ("1.25", 1250),
    (2, 2000), (0.25, 250), ("1e-3", 1), ("0.0001", 1), ("250000u", 250), ("1k", 1_000_000),
])
def test_cpu(text, millis):
    assert cpu_millis(text) == millis
    assert cpu_cores(text) == millis / 1000


def test_cpu_shares_like_the_kubelet():
    assert cpu_shares("500m") == 512
    assert cpu_shares("1") == 1024
    assert cpu_shares("1m") == 2  # MinShares


def test_exact_decimal():
    assert parse_quantity("0.1") == Decimal("0.1")
    assert parse_quantity("-1") == Decimal(-1)


@pytest.mark.parametrize("bad", ["", "Mi", "1.2.3", "1x", "1MiB", "1e", "1e1.5", "one", "1 Mi",
                                 ".", "--1", "1Kib", None, True, float("inf"), [1]])
def test_invalid(bad):
    with pytest.raises(InvalidArgument):
        parse_quantity(bad)


def test_negative_limits_refused():
    with pytest.raises(InvalidArgument):
        memory_bytes("-1Mi")
    with pytest.raises(InvalidArgument):
        cpu_millis("-500m")
