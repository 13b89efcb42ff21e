"""Index intervals as Jobs write them ("0-2,5,7-9"): status.completedIndexes and failedIndexes,
and a successPolicy rule's succeededIndexes."""
from __future__ import annotations

__all__ = ["parse_intervals", "parse_indexes", "format_indexes"]


def parse_intervals(text: str, limit: int) -> list[tuple[int, int]]:
    """Strictly, as the API server validates succeededIndexes: increasing, non-overlapping
    intervals of indexes below ``limit``. ValueError with Kubernetes' words otherwise."""
    out: list[tuple[int, int]] = []
    prev = -1
    for frag in text.split(","):
        parts = frag.split("-")
        if len(parts) > 2:
            raise ValueError(f'the fragment "{frag}" violates the requirement that an index interval can have '
                             "at most two parts separated by '-'")
        nums = []
        for p in parts:
            if not p.isdigit():
                raise ValueError(f'cannot convert string to integer for index: "{p}"')
            if int(p) >= limit:
                raise ValueError(f'too large index: "{p}"')
            nums.append(int(p))
        lo, hi = nums[0], nums[-1]
        if len(nums) == 2 and lo >= hi:
            raise ValueError(f"non-increasing order, previous: {lo}, current: {hi}")
        if lo <= prev:
            raise ValueError(f"non-increasing order, previous: {prev}, current: {lo}")
        out.append((lo, hi))
        prev = hi
    return out


def parse_indexes(text: str | None) -> set[int]:
    """Leniently, as the Job controller reads its own status: what does not parse is skipped."""
    out: set[int] = set()
    for part in (text or "").split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


def format_indexes(indexes) -> str:
    """Sorted indexes as Kubernetes writes status.completedIndexes: a run of consecutive indexes
    as "first-last", a lone one as itself ("0-1,3,5-7")."""
    out, run = [], []
    for ix in sorted(indexes):
        if run and ix == run[-1] + 1:
            run.append(ix)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [ix]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)
