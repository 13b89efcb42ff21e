"""skiff system df: disk usage of images, containers and volumes, as docker shows it."""

from __future__ import annotations

from ..errors import SkiffError
from .parser import Command, Opt

COMMAND = Command("system", "system df [OPTIONS]", "Show skiff disk usage", [
    Opt(("-v", "--verbose"), "verbose", help="Show detailed information on space usage"),
], min_args=1, max_args=1)


def _reclaimable(reclaim: int, total: int) -> str:
    from .table import human_size

    if total <= 0:
        return human_size(reclaim)
    return f"{human_size(reclaim)} ({int(100 * reclaim / total)}%)"


def disk_usage(ctx) -> list[list]:
    """[[type, total, active, size, reclaimable], ...] in bytes."""
    from ..runtime.images.store import tree_size

    images = ctx.images.list()
    sizes = ctx.images.layer_sizes()
    containers = ctx.containers.list()
    used = {c.spec.image_id for c in containers}
    active = [i for i in images if i.id in used]
    all_layers = {d.split(":", 1)[-1] for i in images for d in i.diff_ids}
    active_layers = {d.split(":", 1)[-1] for i in active for d in i.diff_ids}
    isize = sum(sizes.get(h, 0) for h in all_layers)
    ireclaim = sum(sizes.get(h, 0) for h in all_layers - active_layers)
    csizes, running = 0, 0
    creclaim = 0
    for c in containers:
        s = tree_size(c.dir + "/upper")
        csizes += s
        try:
            is_running = c.state().running
        except Exception:  # noqa: BLE001 - removed meanwhile
            is_running = False
        if is_running:
            running += 1
        else:
            creclaim += s
    return [["Images", len(images), len(active), isize, ireclaim],
            ["Containers", len(containers), running, csizes, creclaim],
            ["Local Volumes", 0, 0, 0, 0]]


def main(ctx, values, args) -> int:
    from .table import human_size, print_table

    if args[0] != "df":
        raise SkiffError(f"skiff system: unknown command \"{args[0]}\" (only df is supported)")
    rows = [[t, str(n), str(a), human_size(s), _reclaimable(r, s)]
            for t, n, a, s, r in disk_usage(ctx)]
    print_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], rows)
    return 0
