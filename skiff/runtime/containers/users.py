"""Resolve `-u USER[:GROUP]` against the container's own /etc/passwd and /etc/group."""

from __future__ import annotations


from ...errors import SkiffError
from ..record import Record


class User(Record):
    uid: int = 0
    gid: int = 0
    groups: list[int] = []
    home: str = "/"


def _read(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve(spec: str, etc: str = "/etc", group_add: list[str] | tuple[str, ...] = ()) -> User:
    """Resolve a docker user spec (name, uid, name:group, uid:gid) inside ``etc``, with the
    extra supplementary groups of --group-add (gids, or names in ``etc``/group)."""
    spec = spec or "0"
    user_part, _, group_part = spec.partition(":")
    passwd = _read(f"{etc}/passwd")
    u = User(home="/root" if user_part in ("0", "root") else "/")
    entry = None
    for row in passwd:
        if len(row) >= 7 and (row[0] == user_part or (user_part.isdigit() and row[2] == user_part)):
            entry = row
            break
    if entry is not None:
        u.uid, u.gid, u.home = int(entry[2]), int(entry[3]), entry[5] or "/"
    elif user_part.isdigit():
        u.uid = int(user_part)
        u.gid = 0 if not group_part else u.gid
    else:
        raise SkiffError(f'unable to find user {user_part}: no matching entries in passwd file')
    groups = _read(f"{etc}/group")
    if group_part:
        for row in groups:
            if len(row) >= 3 and (row[0] == group_part or (group_part.isdigit() and row[2] == group_part)):
                u.gid = int(row[2])
                break
        else:
            if not group_part.isdigit():
                raise SkiffError(f"unable to find group {group_part}: no matching entries in group file")
            u.gid = int(group_part)
    name = entry[0] if entry else None
    if name:
        u.groups = sorted({int(r[2]) for r in groups
                           if len(r) >= 4 and r[2].isdigit() and name in r[3].split(",")})
    if group_add:
        u.groups = sorted(set(u.groups) | {_gid(g, groups) for g in group_add})
    return u


def _gid(group: str, groups: list[list[str]]) -> int:
    if group.isdigit():
        return int(group)
    for row in groups:
        if len(row) >= 3 and row[0] == group and row[2].isdigit():
            return int(row[2])
    raise SkiffError(f"unable to find group {group}: no matching entries in group file")
