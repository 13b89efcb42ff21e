"""The monitor from a threaded caller (the agent): spawned with `python -I -m`, not forked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import needs_root

pytestmark = [needs_root]

SCRIPT = textwrap.dedent("""
    import sys, threading, time
    from skiff.runtime.containers.create import CreateOptions, create
    from skiff.runtime.containers.start import start
    from skiff.runtime.containers.store import ContainerStore
    from skiff.runtime.images.store import ImageStore
    from skiff.runtime.root import Root
    from skiff.runtime.containers import monitor

    spawned = []
    real_popen = monitor.__dict__.get("subprocess")
    import subprocess
    orig = subprocess.Popen
    class Spy(orig):
        def __init__(self, args, *a, **k):
            spawned.append(args)
            super().__init__(args, *a, **k)
    subprocess.Popen = Spy

    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()  # a second thread: forking the monitor would be unsafe now
    root = Root(sys.argv[1])
    store, images = ContainerStore(root), ImageStore(root)
    c = create(store, images, CreateOptions(image="busybox", network="none", autoremove=True,
                                            command=["sh", "-c", "exit 7"]))
    code = start(c, attach=True).wait()
    stop.set()
    print(code, len(spawned), "skiff.runtime.containers.monitor" in " ".join(spawned[0]))
""")


def test_threaded_caller_spawns_the_monitor(busybox):
    p = subprocess.run([sys.executable, "-c", SCRIPT, busybox.root], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["7", "1", "True"]
    assert busybox.ok("ps", "-a", "-q").strip() == ""  # --rm: gone
