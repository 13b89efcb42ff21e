"""The container's root file system, built inside its own mount namespace.

overlayfs (image layers as lowerdirs, a private upper), then a fresh /proc,
a read-only /sys, a minimal /dev, docker's masked and read-only /proc paths,
the bind-mounted /etc/hostname, /etc/hosts and /etc/resolv.conf, the user's
bind mounts, the root made read-only (--read-only), and finally pivot_root.
Because all of this happens after unshare(CLONE_NEWNS), every mount
disappears with the container: nothing is left in the host's table.
"""

from __future__ import annotations

import os
import stat

from ..kernel import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE,
                      MS_RDONLY, MS_REC, MS_REMOUNT, MS_STRICTATIME, Kernel)

# docker's defaults (moby oci/defaults.go): hidden and read-only paths
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# name -> (major, minor), all mode 0666 as in runc's default devices
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
           "urandom": (1, 9), "tty": (5, 0)}

ETC_FILES = ("hostname", "hosts", "resolv.conf")


def secure_join(root: str, path: str) -> str:
    """``root`` + ``path`` with every symlink resolved as the container would see it.

    Absolute link targets restart at ``root``, ``..`` never climbs above it, and a
    missing tail is appended as it is (it cannot be a link). The image is not running
    yet and its layers are read-only, so the answer cannot change before it is used
    (the idea of runc's filepath-securejoin).
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root + "/" + "/".join(resolved + [name])
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved += [name, *[p for p in parts if p not in ("", ".")]]
            break
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > 40:
                raise OSError(40, "too many levels of symbolic links", root + path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(name)
    return root + "/" + "/".join(resolved) if resolved else root


def _mkdirs(path: str, mode: int = 0o755) -> None:
    try:
        os.makedirs(path, mode)
    except FileExistsError:
        pass


def _touch(path: str) -> None:
    """Make ``path`` a regular file to bind-mount onto, without following symlinks out."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):  # e.g. /etc/resolv.conf -> ../run/...: replace in the upper
            os.unlink(path)
        else:
            return
    except FileNotFoundError:
        pass
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))


# overlayfs copies its mount data into one page and rejects anything longer
MOUNT_DATA_MAX = 4095


def overlay_data(lowerdirs: list[str], upper: str, work: str) -> tuple[str | None, str]:
    """(directory to chdir to or None, the overlay mount data).

    Lower paths are given relative to their common parent (the store's layers
    directory), which keeps the data short; when even that would not fit in a
    page (an image of many layers), the layers' 10-character links are used
    instead, relative to the links directory (skiff/runtime/images/layers.py),
    made here if missing.
    """
    parent = os.path.dirname(lowerdirs[0]) if lowerdirs else None
    tail = f",upperdir={upper},workdir={work}"
    if parent and all(os.path.dirname(d) == parent for d in lowerdirs):
        lowers = [os.path.basename(d) for d in reversed(lowerdirs)]
        data = f"lowerdir={':'.join(lowers)}{tail}"
        if len(data) > MOUNT_DATA_MAX:
            from ..images.layers import ensure_link, links_dir
            lowers = [ensure_link(parent, name) for name in lowers]
            return links_dir(parent), f"lowerdir={':'.join(lowers)}{tail}"
        return parent, data
    return None, f"lowerdir={':'.join(reversed(lowerdirs))}{tail}"


def mount_overlay(k: Kernel, lowerdirs: list[str], upper: str, work: str, target: str) -> None:
    """Mount the overlay. ``lowerdirs`` lowest first; overlay wants the top one first."""
    cwd, data = overlay_data(lowerdirs, upper, work)
    if cwd:
        os.chdir(cwd)
    k.mount("overlay", target, "overlay", 0, data)


def mount_proc(k: Kernel, rootfs: str) -> None:
    proc = secure_join(rootfs, "/proc")
    _mkdirs(proc)
    k.mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def mount_sys(k: Kernel, rootfs: str, readonly: bool = True) -> None:
    """sysfs: read-only, or read-write for a --privileged container (as runc)."""
    sys_ = secure_join(rootfs, "/sys")
    _mkdirs(sys_)
    k.mount("sysfs", sys_, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (MS_RDONLY if readonly else 0))


# Host /dev entries never copied into a --privileged container (runc's GetDevices skips these)
HOST_DEV_SKIP_DIRS = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev")
HOST_DEV_SKIP_FILES = ("console", "ptmx")


def host_devices(dev_dir: str = "/dev") -> list[tuple[str, int, int, int, int]]:
    """Every character and block device under the host's ``dev_dir``, as (path relative to it,
    mode, rdev, uid, gid): what docker and podman --privileged create in the container."""
    out = []

    def walk(path: str, rel: str) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for e in entries:
            name = f"{rel}/{e.name}" if rel else e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not (not rel and e.name in HOST_DEV_SKIP_DIRS):
                    walk(e.path, name)
            elif (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and \
                    not (not rel and e.name in HOST_DEV_SKIP_FILES):
                out.append((name, st.st_mode, st.st_rdev, st.st_uid, st.st_gid))

    walk(dev_dir, "")
    return out


def make_host_devices(dev: str, devices) -> None:
    """Create the host's device nodes (``host_devices``) in the container's /dev tmpfs, with
    the host's mode and owner; the standard ones made already are left as they are."""
    for rel, mode, rdev, uid, gid in devices:
        target = f"{dev}/{rel}"
        if os.path.lexists(target):
            continue
        _mkdirs(os.path.dirname(target))
        os.mknod(target, mode, rdev)
        os.chown(target, uid, gid, follow_symlinks=False)


def mount_dev(k: Kernel, rootfs: str, privileged: bool = False) -> None:
    """A tmpfs /dev with runc's default devices, devpts, shm and mqueue; ``privileged``: every
    device node of the host's /dev as well (read before the container's /dev hides nothing:
    the host's is still at /dev, pivot_root comes later)."""
    devices = host_devices() if privileged else []
    dev = secure_join(rootfs, "/dev")
    _mkdirs(dev)
    k.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    old = os.umask(0)
    try:
        for name, (major, minor) in DEVICES.items():
            os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.mkdir(dev + "/pts", 0o755)
        os.mkdir(dev + "/shm", 0o1777)
        os.mkdir(dev + "/mqueue", 0o755)
    finally:
        os.umask(old)
    k.mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5")
    k.mount("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    k.mount("mqueue", dev + "/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.symlink("pts/ptmx", dev + "/ptmx")
    os.symlink("/proc/self/fd", dev + "/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{dev}/{name}")
    if devices:
        old = os.umask(0)
        try:
            make_host_devices(dev, devices)
        finally:
            os.umask(old)


def bind_file(k: Kernel, source: str, target: str, readonly: bool = False) -> None:
    _touch(target)
    k.mount(source, target, None, MS_BIND)
    if readonly:
        k.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def bind_etc_files(k: Kernel, rootfs: str, files: dict[str, str]) -> None:
    """Bind the container's own hostname/hosts/resolv.conf over the image's."""
    if not files:
        return
    etc = secure_join(rootfs, "/etc")
    _mkdirs(etc)
    for name, source in files.items():
        # the last component is not followed: a symlink there is replaced in the upper dir
        bind_file(k, source, f"{etc}/{name}")


def bind_mounts(k: Kernel, rootfs: str, mounts: list[dict]) -> None:
    """The user's bind mounts (-v, --mount), in order. The target is resolved inside the
    root (a symlink in the image cannot send it to the host) and made to match the source:
    a directory, or an empty file."""
    for m in mounts:
        source, target = m["source"], secure_join(rootfs, m["destination"])
        if os.path.isdir(source):
            _mkdirs(target)
        else:
            _mkdirs(os.path.dirname(target))
            _touch(target)
        try:
            k.mount(source, target, None, MS_BIND | MS_REC)
            if m.get("readonly"):
                k.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
        except OSError as e:
            from ...errors import SkiffError
            raise SkiffError(f"error mounting \"{source}\" to rootfs at \"{m['destination']}\": "
                             f"{e.strerror}") from None


def make_read_only(k: Kernel, rootfs: str, workdir: str = "") -> None:
    """--read-only: remount the root itself read-only. The mounts on it (/proc, /dev, /sys,
    the /etc files, volumes) keep their own modes. The working directory is made first, as
    docker makes it at create."""
    if workdir:
        _mkdirs(secure_join(rootfs, workdir))
    k.mount(None, rootfs, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def mask_paths(k: Kernel, rootfs: str) -> None:
    for p in MASKED_PATHS:
        target = secure_join(rootfs, p)
        try:
            st = os.stat(target)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            k.mount("tmpfs", target, "tmpfs", MS_RDONLY)
        else:
            k.mount("/dev/null", target, None, MS_BIND)
    for p in READONLY_PATHS:
        target = secure_join(rootfs, p)
        if not os.path.exists(target):
            continue
        k.mount(target, target, None, MS_BIND | MS_REC)
        k.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)


def make_private(k: Kernel) -> None:
    """Stop mount events from propagating back to the host."""
    k.mount(None, "/", None, MS_REC | MS_PRIVATE)


def pivot(k: Kernel, rootfs: str) -> None:
    """pivot_root into ``rootfs`` (runc's trick: put the old root on top, then detach it)."""
    os.chdir(rootfs)
    k.pivot_root(".", ".")
    k.umount(".", MNT_DETACH)
    os.chdir("/")
