"""Signal names as docker accepts them: KILL, SIGKILL, 9."""

from __future__ import annotations

import signal

from ...errors import InvalidArgument


def parse(text: str | int) -> int:
    if isinstance(text, int):
        return text
    t = text.strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < signal.NSIG:
            return n
    else:
        name = t if t.startswith("SIG") else "SIG" + t
        sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
        if sig is not None:
            return int(sig)
    raise InvalidArgument(f'invalid signal: {text}')
