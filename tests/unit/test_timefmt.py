import datetime

from skiff.api import timefmt


def _std(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_given_times_are_formatted_in_utc_whole_seconds():
    for t in (0, 1.999, 1_700_000_000.5, 4_102_444_800):
        assert timefmt.rfc3339(t) == _std(t)


def test_the_current_second_is_kept_and_renewed_when_it_changes(monkeypatch):
    clock = [1_800_000_000.2]
    monkeypatch.setattr(timefmt.time, "time", lambda: clock[0])
    first = timefmt.rfc3339()
    assert first == _std(clock[0])
    clock[0] += 0.5                       # the same second: the kept text
    assert timefmt.rfc3339() is first
    clock[0] += 1                         # the next one: made again
    assert timefmt.rfc3339() == _std(clock[0]) != first
    assert timefmt.rfc3339(clock[0] - 3600) == _std(clock[0] - 3600)   # explicit times aside
    assert timefmt.rfc3339() == _std(clock[0])
