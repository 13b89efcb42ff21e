"""Container logs in docker's json-file format.

Each line of a log file is one JSON object::

    {"log":"hello\\n","stream":"stdout","time":"2026-11-28T00:12:21.123456789Z"}

``LogWriter`` is used by the per-container monitor process (which has a small
memory budget) and ``read_logs`` by the CLI (which must start fast), so this
module imports only ``os``, ``time`` and skiff's fastjson at module level;
``skiff.errors`` is imported lazily where an error is raised.

Rotation follows docker's ``--log-opt max-size`` / ``max-file``: when the
current file would grow past ``max_size`` bytes it is renamed to ``path.1``
(older files shift up to ``path.N``, keeping ``max_files`` files in all), and a
fresh ``path`` is started.  With ``max_files=1`` the file is replaced by an
empty one (a new inode, so a reader following the old one can finish it).
"""

from __future__ import annotations

import os
import time

from .. import fastjson as json

__all__ = ["LogWriter", "parse_size", "read_logs", "PARTIAL_MAX"]

# A partial line (no newline yet) is written as its own entry once this many
# bytes are buffered, as docker does; no entry holds more than this much text.
PARTIAL_MAX = 16 * 1024

_BLOCK = 64 * 1024  # read size for log files, forwards and backwards
_FILE_MODE = 0o640
_WFLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_RFLAGS = os.O_RDONLY | os.O_CLOEXEC


def _invalid(message: str) -> Exception:
    from skiff.errors import InvalidArgument

    return InvalidArgument(message)


def _timestamp(ns: int) -> str:
    """RFC 3339 UTC time with nanoseconds: 2026-11-28T00:12:21.123456789Z."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % frac


def _utf8_cut(buf: bytes, end: int) -> int:
    """Move ``end`` back (at most 3 bytes) so buf[:end] does not end inside a UTF-8 character."""
    for k in (1, 2, 3):
        b = buf[end - k]
        if b < 0x80:  # ASCII: nothing is cut
            return end
        if b >= 0xC0:  # the lead byte of the last character
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return end - k if need > k else end
    return end  # not valid UTF-8 anyway: cut where we are


class LogWriter:
    """Appends container output to a json-file log, rotating it by size.

    Not thread-safe: call it from one thread (the monitor's event loop).
    OSErrors from the file system (e.g. a full disk) propagate to the caller.
    """

    def __init__(self, path: str, max_size: int | None = None, max_files: int = 1):
        if max_size is not None and max_size <= 0:
            raise _invalid(f'invalid log-opt max-size "{max_size}"')
        if max_files < 1:
            raise _invalid(f'invalid log-opt max-file "{max_files}": must be at least 1')
        self.path = path
        self.max_size = max_size
        self.max_files = max_files
        self._partial: dict[str, bytes] = {}
        self._fd: int | None = os.open(path, _WFLAGS, _FILE_MODE)
        self._size = os.fstat(self._fd).st_size

    # -- public API ---------------------------------------------------------

    def write(self, stream: str, data: bytes) -> None:
        """Log ``data`` read from ``stream`` ("stdout" or "stderr").

        Each complete line becomes one entry; an incomplete last line waits in
        a per-stream buffer for its newline, or until PARTIAL_MAX bytes are
        buffered (then it is written as an entry without a newline).
        """
        if self._fd is None:
            raise ValueError("write to a closed LogWriter")
        if not data:
            return
        pending = self._partial.pop(stream, None)
        buf = pending + data if pending else bytes(data)
        chunks: list[bytes] = []
        pos, n = 0, len(buf)
        while pos < n:
            nl = buf.find(b"\n", pos, pos + PARTIAL_MAX)
            if nl >= 0:
                end = nl + 1
            elif n - pos >= PARTIAL_MAX:
                end = _utf8_cut(buf, pos + PARTIAL_MAX)
            else:
                break
            chunks.append(buf[pos:end])
            pos = end
        if pos < n:
            self._partial[stream] = buf[pos:]
        if chunks:
            self._emit(stream, chunks)

    def flush_partial(self) -> None:
        """Write every buffered partial line as an entry (at container exit)."""
        if self._fd is None:
            return
        partial, self._partial = self._partial, {}
        for stream, data in partial.items():
            if data:
                self._emit(stream, [data])

    def close(self) -> None:
        """Flush buffered partial lines and close the file (idempotent)."""
        if self._fd is None:
            return
        try:
            self.flush_partial()
        finally:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------

    def _emit(self, stream: str, chunks: list[bytes]) -> None:
        ts = _timestamp(time.time_ns())
        batch: list[bytes] = []
        blen = 0
        limit = self.max_size
        for chunk in chunks:
            entry = (
                json.dumps(
                    {"log": chunk.decode("utf-8", "replace"), "stream": stream, "time": ts},
                    ensure_ascii=False,
                )
                + "\n"
            ).encode("utf-8")
            if limit is not None and self._size + blen > 0 and self._size + blen + len(entry) > limit:
                if batch:
                    self._write_all(b"".join(batch))
                    batch, blen = [], 0
                self._rotate()
            batch.append(entry)
            blen += len(entry)
        if batch:
            self._write_all(b"".join(batch))

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)

    def _rotate(self) -> None:
        assert self._fd is not None
        path = self.path
        if self.max_files <= 1:
            # Replace the file by a new, empty one: readers holding the old one
            # can still read it to its end, and path is never missing.
            tmp = path + ".rotating"
            fd = os.open(tmp, _WFLAGS | os.O_TRUNC, _FILE_MODE)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.close(fd)
                raise
        else:
            for n in range(self.max_files - 1, 1, -1):
                try:
                    os.rename(f"{path}.{n - 1}", f"{path}.{n}")
                except FileNotFoundError:
                    pass
            try:
                os.rename(path, path + ".1")
            except FileNotFoundError:
                pass
            fd = os.open(path, _WFLAGS, _FILE_MODE)
        old, self._fd = self._fd, fd
        self._size = os.fstat(fd).st_size
        os.close(old)


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Parse a docker log-opt size: "100", "1k", "10m", "1g" (also "10mb", "10MiB", "1.5m").

    Units are binary (k = 1024) and case-insensitive; the size must be positive.
    Anything else raises InvalidArgument('invalid log-opt max-size "<text>"').
    """
    s = str(text).strip().lower()
    if s.endswith("b"):
        s = s[:-1]
    if s.endswith("i"):
        s = s[:-1]
    unit = ""
    if s and s[-1] in _UNITS:
        unit, s = s[-1], s[:-1]
    s = s.rstrip(" ")
    whole, dot, frac = s.partition(".")
    digits = "0123456789"
    if (
        not whole
        or not all(c in digits for c in whole)
        or (dot and (not frac or not all(c in digits for c in frac)))
    ):
        raise _invalid(f'invalid log-opt max-size "{text}"')
    size = int(whole) * _UNITS[unit]
    if frac:
        size += int(frac) * _UNITS[unit] // 10 ** len(frac)
    if size <= 0:
        raise _invalid(f'invalid log-opt max-size "{text}"')
    return size


# -- reading ------------------------------------------------------------------

_Entry = tuple[str, str, str]  # (stream, log text, time)


def _parse(line: bytes) -> _Entry | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    log = obj.get("log")
    if not isinstance(log, str):
        return None
    stream = obj.get("stream")
    ts = obj.get("time")
    return (
        stream if isinstance(stream, str) else "stdout",
        log,
        ts if isinstance(ts, str) else "",
    )


def _open(path: str) -> int | None:
    try:
        return os.open(path, _RFLAGS)
    except FileNotFoundError:
        return None


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


class _Source:
    """One open log file read forwards from ``pos``; ``buf`` holds an incomplete last line."""

    __slots__ = ("fd", "ident", "pos", "buf")

    def __init__(self, fd: int, pos: int = 0):
        self.fd = fd
        self.ident = _ident(fd)
        self.pos = pos
        self.buf = b""

    def entries(self) -> Iterator[_Entry]:
        """Yield the entries of the complete lines between pos and the end of the file."""
        while True:
            chunk = os.pread(self.fd, _BLOCK, self.pos)
            if not chunk:
                return
            self.pos += len(chunk)
            data = self.buf + chunk if self.buf else chunk
            last = data.rfind(b"\n")
            if last < 0:
                self.buf = data
                continue
            self.buf = data[last + 1 :]
            for line in data[:last].split(b"\n"):
                entry = _parse(line)
                if entry is not None:
                    yield entry

    def close(self) -> None:
        os.close(self.fd)


def _complete_end(fd: int, size: int) -> int:
    """The offset just after the last newline in fd[:size] (0 if there is none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - _BLOCK)
        i = os.pread(fd, pos - start, start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def _last_entries(fd: int, end: int, n: int) -> list[_Entry]:
    """Up to the last ``n`` entries of fd[:end] (end just after a newline), reading backwards."""
    found: list[_Entry] = []  # newest first
    buf = b""  # the unconsumed start of what has been read; ends with b"\n"
    pos = end
    while pos > 0 and len(found) < n:
        start = max(0, pos - _BLOCK)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        while len(found) < n and buf:
            i = buf.rfind(b"\n", 0, len(buf) - 1)
            if i < 0:
                if pos > 0:
                    break  # the line starts in an earlier block
                line, buf = buf, b""
            else:
                line, buf = buf[i + 1 :], buf[: i + 1]
            entry = _parse(line[:-1] if line.endswith(b"\n") else line)
            if entry is not None:
                found.append(entry)
    found.reverse()
    return found


def _rotated(path: str, skip: tuple[int, int] | None) -> Iterator[int]:
    """Open path.1, path.2, ... (newest first) until one is missing; skip the file ``skip``."""
    k = 1
    while True:
        fd = _open(f"{path}.{k}")
        if fd is None:
            return
        if skip is not None and _ident(fd) == skip:
            os.close(fd)
        else:
            yield fd
        k += 1


def _files_between(path: str, old: tuple[int, int], new: tuple[int, int] | None) -> list[int]:
    """After a rotation: open the rotated files newer than ``old`` and older than ``new``.

    Several rotations may happen between two polls; the files they produced are
    read in full so that nothing is lost. Returns fds oldest first.
    """
    fds: list[int] = []
    found = False
    for k in range(1, 10_000):
        fd = _open(f"{path}.{k}")
        if fd is None:
            break
        ident = _ident(fd)
        if ident == old:
            os.close(fd)
            found = True
            break
        if ident == new:  # rotated again after we opened it: only older ones count
            for f in fds:
                os.close(f)
            fds = []
            os.close(fd)
            continue
        fds.append(fd)
    if not found:  # old was dropped (max_files=1, or beyond max_files): nothing to add
        for f in fds:
            os.close(f)
        return []
    fds.reverse()
    return fds


def read_logs(
    path: str,
    *,
    tail: int | None = None,
    follow: bool = False,
    timestamps: bool = False,
    is_running: Callable[[], bool] = lambda: False,
    poll: float = 0.05,
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(stream, data)`` for the entries of the log at ``path``, oldest first.

    Reads the rotated files (path.N ... path.1) and then ``path``. ``tail=N``
    yields only the last N entries (None or a negative number: all), reading
    backwards and opening rotated files only as needed. ``timestamps`` prefixes
    each entry with its time and a space. With ``follow``, keeps yielding
    entries as they are appended (across rotations) until ``is_running()`` is
    False and no more data is there. A missing log yields nothing. An
    incomplete last line (being written) is not yielded until it is complete.
    """

    def out(entry: _Entry) -> tuple[str, bytes]:
        stream, log, ts = entry
        text = f"{ts} {log}" if timestamps else log
        return stream, text.encode("utf-8", "replace")

    cur_fd = _open(path)
    src: _Source | None = None
    try:
        skip = _ident(cur_fd) if cur_fd is not None else None
        # -- the existing entries --
        if tail is not None and tail >= 0:
            end = 0
            if cur_fd is not None:
                end = _complete_end(cur_fd, os.fstat(cur_fd).st_size)
            need = tail
            parts: list[list[_Entry]] = []  # newest file first
            if cur_fd is not None and need > 0:
                got = _last_entries(cur_fd, end, need)
                parts.append(got)
                need -= len(got)
            if need > 0:
                for fd in _rotated(path, skip):
                    try:
                        got = _last_entries(fd, _complete_end(fd, os.fstat(fd).st_size), need)
                    finally:
                        os.close(fd)
                    parts.append(got)
                    need -= len(got)
                    if need <= 0:
                        break
            for got in reversed(parts):
                for entry in got:
                    yield out(entry)
            if cur_fd is not None:
                src = _Source(cur_fd, end)
                cur_fd = None
        else:
            older = list(_rotated(path, skip))
            try:
                while older:
                    fd = older.pop()  # oldest first
                    try:
                        for entry in _Source(fd).entries():
                            yield out(entry)
                    finally:
                        os.close(fd)
            finally:
                for fd in older:
                    os.close(fd)
            if cur_fd is not None:
                src = _Source(cur_fd, 0)
                cur_fd = None
                for entry in src.entries():
                    yield out(entry)
        if not follow:
            return

        # -- follow --
        stopping = False
        while True:
            if src is not None:
                before = src.pos
                for entry in src.entries():
                    yield out(entry)
                if src.pos != before:
                    continue
            # Idle: has the file been rotated, replaced or truncated?
            try:
                st = os.stat(path)
                ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                st, ident = None, None
            if src is None:
                if ident is not None:
                    fd = _open(path)
                    if fd is not None:
                        src = _Source(fd, 0)
                        continue
            elif ident != src.ident:
                # Renamed away or replaced: finish the old file, then any files
                # rotated after it, then start on the new path from offset 0.
                for entry in src.entries():
                    yield out(entry)
                old = src.ident
                src.close()
                src = None
                fd = _open(path)
                new = _ident(fd) if fd is not None else None
                between = _files_between(path, old, new)
                try:
                    while between:
                        bfd = between.pop(0)
                        try:
                            for entry in _Source(bfd).entries():
                                yield out(entry)
                        finally:
                            os.close(bfd)
                except BaseException:
                    for bfd in between:
                        os.close(bfd)
                    if fd is not None:
                        os.close(fd)
                    raise
                if fd is not None:
                    src = _Source(fd, 0)
                continue
            elif os.fstat(src.fd).st_size < src.pos:
                src.pos, src.buf = 0, b""  # truncated in place
                continue
            if stopping:
                return
            if not is_running():
                stopping = True  # one more round to drain what is left
                continue
            time.sleep(poll)
    finally:
        if cur_fd is not None:
            os.close(cur_fd)
        if src is not None:
            src.close()
