"""Unit tests for skiff.cli.table: docker's (go-units) HumanDuration and HumanSize, and columns."""

import io
import time

import pytest

from skiff.cli.table import ago, human_duration, human_size, print_table

MIN = 60
HOUR = 60 * MIN
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY
YEAR = 365 * DAY


# The table of go-units' own TestHumanDuration (duration_test.go).
@pytest.mark.parametrize("seconds,expected", [
    (0, "Less than a second"),
    (0.45, "Less than a second"),
    (0.999, "Less than a second"),
    (1, "1 second"),
    (1.9, "1 second"),
    (2, "2 seconds"),
    (45, "45 seconds"),
    (46, "46 seconds"),
    (59, "59 seconds"),
    (59.99, "59 seconds"),
    (60, "About a minute"),
    (119, "About a minute"),
    (120, "2 minutes"),
    (3 * MIN, "3 minutes"),
    (35 * MIN, "35 minutes"),
    (35 * MIN + 40, "35 minutes"),
    (45 * MIN, "45 minutes"),
    (45 * MIN + 40, "45 minutes"),
    (46 * MIN, "46 minutes"),
    (59 * MIN, "59 minutes"),
    (3599, "59 minutes"),
    (HOUR, "About an hour"),
    (HOUR + 29 * MIN, "About an hour"),
    (HOUR + 31 * MIN, "2 hours"),
    (HOUR + 59 * MIN, "2 hours"),
    (3 * HOUR, "3 hours"),
    (3 * HOUR + 29 * MIN, "3 hours"),
    (3 * HOUR + 31 * MIN, "4 hours"),
    (3 * HOUR + 59 * MIN, "4 hours"),
    (3 * HOUR + 60 * MIN, "4 hours"),
    (DAY, "24 hours"),
    (DAY + 12 * HOUR, "36 hours"),
    (47 * HOUR, "47 hours"),
    (2 * DAY, "2 days"),
    (7 * DAY, "7 days"),
    (13 * DAY + 5 * HOUR, "13 days"),
    (2 * WEEK, "2 weeks"),
    (2 * WEEK + 4 * DAY, "2 weeks"),
    (3 * WEEK, "3 weeks"),
    (4 * WEEK, "4 weeks"),
    (4 * WEEK + 3 * DAY, "4 weeks"),
    (MONTH, "4 weeks"),
    (MONTH + 2 * WEEK, "6 weeks"),
    (2 * MONTH, "2 months"),
    (2 * MONTH + 2 * WEEK, "2 months"),
    (3 * MONTH, "3 months"),
    (3 * MONTH + WEEK, "3 months"),
    (5 * MONTH + 2 * WEEK, "5 months"),
    (13 * MONTH, "13 months"),
    (23 * MONTH, "23 months"),
    (24 * MONTH, "24 months"),
    (24 * MONTH + 2 * WEEK, "2 years"),
    (3 * YEAR + 2 * MONTH, "3 years"),
])
def test_human_duration_go_units_table(seconds, expected):
    assert human_duration(seconds) == expected


def test_human_duration_negative_is_less_than_a_second():
    assert human_duration(-5) == "Less than a second"


@pytest.mark.parametrize("seconds,expected", [
    (HOUR + 30 * MIN, "2 hours"),
    # Go's Duration.Round rounds halfway values away from zero: 2h30m -> 3h
    (2 * HOUR + 30 * MIN, "3 hours"),
    (10 * HOUR + 30 * MIN, "11 hours"),
])
def test_human_duration_rounds_half_hours_up(seconds, expected):
    assert human_duration(seconds) == expected


def test_human_duration_years_truncate_hours():
    # go-units: int(d.Hours())/24/365 for years (truncated hours, not rounded)
    assert human_duration(3 * YEAR - 20 * MIN) == "2 years"


def test_ago():
    from skiff.runtime.containers.state import now_rfc3339
    assert ago(now_rfc3339()) == "Less than a second ago"
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 3 * HOUR - 60)) + ".0Z"
    assert ago(t) == "3 hours ago"


# -- human_size: docker images' HumanSizeWithPrecision(size, 3) -----------------------------


@pytest.mark.parametrize("n,expected", [
    (0, "0B"),
    (1, "1B"),
    (999, "999B"),
    (1000, "1kB"),
    (1024, "1.02kB"),
    (1500, "1.5kB"),
    (4_400_000, "4.4MB"),
    (1_234_567, "1.23MB"),
    (123_456_789, "123MB"),
    (5_000_000_000, "5GB"),
    (2 * 10 ** 12, "2TB"),
    (3 * 10 ** 15, "3e+03TB"),
])
def test_human_size(n, expected):
    assert human_size(n) == expected


# -- print_table --------------------------------------------------------------------------


def table(headers, rows):
    out = io.StringIO()
    print_table(headers, rows, out=out)
    return out.getvalue()


def test_print_table_alignment():
    text = table(["ID", "IMAGE", "NAMES"], [["abc", "busybox", "web"], ["d", "b", "x"]])
    assert text == (
        "ID    IMAGE     NAMES\n"
        "abc   busybox   web\n"
        "d     b         x\n"
    )


def test_print_table_columns_start_at_same_offset():
    text = table(["A", "BB", "C"], [["xxxx", "y", "zz"], ["", "longer", "q"]])
    lines = text.splitlines()
    assert lines == ["A      BB       C", "xxxx   y        zz", "       longer   q"]
    starts = {line.index(cell) for line, cell in zip(lines, ["BB", "y", "longer"])}
    assert starts == {7}


def test_print_table_last_column_not_padded_and_trailing_space_stripped():
    text = table(["A", "LAST"], [["a", ""], ["b", "very long value"]])
    assert text.splitlines() == ["A   LAST", "a", "b   very long value"]


def test_print_table_headers_only():
    assert table(["CONTAINER ID", "NAMES"], []) == "CONTAINER ID   NAMES\n"


def test_print_table_defaults_to_stdout(capsys):
    print_table(["A", "B"], [["1", "2"]])
    assert capsys.readouterr().out == "A   B\n1   2\n"
