"""The in-process path the agent will use: create + start + wait, timed per container.

Usage: lib_run.py ROOT RUNS [SPACING]; prints a JSON list of milliseconds.
"""

import json
import sys
import time

from skiff.runtime.containers.create import CreateOptions, create
from skiff.runtime.containers.start import start
from skiff.runtime.containers.store import ContainerStore
from skiff.runtime.images.store import ImageStore
from skiff.runtime.root import Root


def main() -> None:
    root = Root(sys.argv[1])
    runs = int(sys.argv[2])
    spacing = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    store, images = ContainerStore(root), ImageStore(root)
    out = []
    for i in range(runs + 3):
        t = time.perf_counter()
        c = create(store, images, CreateOptions(image="busybox", command=["/bin/true"],
                                                network="none", autoremove=True))
        code = start(c, attach=True).wait()
        ms = (time.perf_counter() - t) * 1000
        if code != 0:
            sys.exit(f"container exited {code}")
        if i >= 3:
            out.append(ms)
        if spacing:
            time.sleep(spacing)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
