"""Security options of real containers: --cap-add/--cap-drop, --read-only and --group-add, as the
container sees them (/proc/self/status, what it may do) and as `skiff inspect` shows them."""

from __future__ import annotations

import pytest

from tests.conftest import needs_root
from tests.integration.ctr_helpers import container_ids, inspect, one_error_line, run_d

pytestmark = [needs_root, pytest.mark.root]

DEFAULT_CAPS = 0xa80425fb


def run(skiff, *args: str):
    return skiff("run", "--rm", "--network", "none", *args)


def status(skiff, *args: str) -> dict[str, str]:
    """/proc/self/status of `skiff run ARGS... busybox cat /proc/self/status`, as a dict."""
    out = skiff.ok("run", "--rm", "--network", "none", *args, "busybox", "cat", "/proc/self/status")
    return {k: v.strip() for k, _, v in (ln.partition(":\t") for ln in out.splitlines())}


def caps(fields: dict[str, str]) -> tuple[int, int, int]:
    return int(fields["CapEff"], 16), int(fields["CapPrm"], 16), int(fields["CapBnd"], 16)


def test_drop_all_add_one_leaves_exactly_that_bit(busybox):
    fields = status(busybox, "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE")
    assert caps(fields) == (0x400, 0x400, 0x400)
    assert fields["CapInh"] == fields["CapAmb"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"
    # root without CAP_CHOWN and CAP_DAC_OVERRIDE is an ordinary user
    p = run(busybox, "--cap-drop", "all", "busybox", "sh", "-c", "touch /f && chown 1 /f")
    assert p.returncode == 1 and "Operation not permitted" in p.stderr


def test_cap_add_net_admin_adds_bit_12_and_its_power(busybox):
    assert caps(status(busybox, "--cap-add", "net_admin")) == (DEFAULT_CAPS | 1 << 12,) * 3
    assert caps(status(busybox, "--cap-add", "CAP_NET_ADMIN", "--cap-drop", "mknod")) == \
        ((DEFAULT_CAPS | 1 << 12) & ~(1 << 27),) * 3
    p = run(busybox, "busybox", "ip", "link", "set", "lo", "mtu", "1400")
    assert p.returncode != 0 and "Operation not permitted" in p.stderr   # docker's default set
    p = run(busybox, "--cap-add", "NET_ADMIN", "busybox", "sh", "-c",
            "ip link set lo mtu 1400 && cat /sys/class/net/lo/mtu")
    assert p.returncode == 0 and p.stdout == "1400\n", p.stderr


def test_exec_gets_the_containers_capabilities_and_groups(busybox):
    cid = run_d(busybox, "--network", "none", "--cap-drop", "ALL", "--cap-add", "KILL",
                "--group-add", "nobody", "busybox", "sleep", "60")
    out = busybox.ok("exec", cid, "cat", "/proc/self/status")
    fields = {k: v.strip() for k, _, v in (ln.partition(":\t") for ln in out.splitlines())}
    assert caps(fields) == (1 << 5,) * 3
    assert fields["Groups"].split() == ["65534"]
    hc = inspect(busybox, cid)["HostConfig"]
    assert (hc["CapAdd"], hc["CapDrop"], hc["GroupAdd"]) == (["CAP_KILL"], ["ALL"], ["nobody"])
    assert hc["ReadonlyRootfs"] is False


def test_unknown_capability_is_refused_before_anything_is_made(busybox):
    p = run(busybox, "--name", "bad", "--cap-add", "NET_ADMIN", "--cap-add", "bogus", "busybox", "true")
    assert p.returncode == 125
    assert one_error_line(p.stderr) == 'Error: invalid CapAdd: unknown capability: "CAP_BOGUS"'
    assert container_ids(busybox.root) == []
    busybox.ok("run", "--rm", "--name", "bad", "--network", "none", "busybox", "true")  # the name is free


def test_read_only_root_with_writable_volume_and_etc_files(busybox, tmp_path):
    vol = tmp_path / "vol"
    p = run(busybox, "--read-only", "-v", f"{vol}:/data", "-w", "/made/by/create", "busybox", "sh", "-c",
            "touch /x; touch /tmp/y; pwd; echo kept > /data/out && echo ok-volume; "
            "echo 10.0.0.9 extra >> /etc/hosts && echo ok-hosts; "
            "touch /dev/shm/z && echo ok-shm; cat /proc/self/status | grep -c ^Pid")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["/made/by/create", "ok-volume", "ok-hosts", "ok-shm", "1"]
    assert "touch: /x: Read-only file system" in p.stderr
    assert "touch: /tmp/y: Read-only file system" in p.stderr
    assert (vol / "out").read_text() == "kept\n"
    # without the flag the same root is writable
    assert busybox.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", "touch /x && echo ok") == "ok\n"
    cid = run_d(busybox, "--network", "none", "--read-only", "busybox", "sleep", "60")
    assert inspect(busybox, cid)["HostConfig"]["ReadonlyRootfs"] is True
    p = busybox("exec", cid, "touch", "/x")
    assert p.returncode != 0 and "Read-only file system" in p.stderr


def test_group_add_shows_in_id_and_status(busybox):
    out = busybox.ok("run", "--rm", "--network", "none", "-u", "1000", "--group-add", "1234",
                     "--group-add", "nobody", "busybox", "sh", "-c", "id -G; grep ^Groups /proc/self/status")
    ids, groups = out.splitlines()
    assert set(ids.split()) == {"0", "1234", "65534"}       # gid 0: no passwd entry for 1000
    assert groups.split()[1:] == ["1234", "65534"]
    assert "1234" not in status(busybox, "-u", "1000")["Groups"].split()
    p = run(busybox, "--group-add", "nosuch", "busybox", "true")
    assert p.returncode == 125
    assert one_error_line(p.stderr) == "Error: unable to find group nosuch: no matching entries in group file"


def test_default_seccomp_profile_and_security_opt(busybox):
    """docker's default seccomp profile: on for every container (Seccomp: 2, one filter); a
    user namespace (no capability needed for one) and the keyring are refused, as in docker;
    --security-opt seccomp=unconfined and --privileged run without it; --cap-add SYS_ADMIN
    unlocks what that capability unlocks in docker's profile."""
    fields = status(busybox)
    assert fields["Seccomp"] == "2" and fields.get("Seccomp_filters") == "1"
    p = run(busybox, "busybox", "unshare", "-U", "true")
    assert p.returncode != 0 and "Operation not permitted" in p.stderr, p.stderr
    # ordinary work is untouched: processes, pipes, files, threads
    assert run(busybox, "busybox", "sh", "-c", "echo a | (cat; sleep 0.1 & wait); ls / >/dev/null; echo ok") \
        .stdout.split() == ["a", "ok"]
    assert status(busybox, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"
    assert run(busybox, "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true").returncode == 0
    assert status(busybox, "--privileged")["Seccomp"] == "0"
    assert run(busybox, "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-U", "true").returncode == 0
    # exec'd processes get the container's filter too; inspect shows --security-opt as docker
    cid = run_d(busybox, "--network", "none", "busybox", "sleep", "30")
    loose = run_d(busybox, "--network", "none", "--security-opt", "seccomp=unconfined", "busybox", "sleep", "30")
    try:
        out = busybox.ok("exec", cid, "grep", "Seccomp:", "/proc/self/status")
        assert out.split() == ["Seccomp:", "2"]
        assert inspect(busybox, cid)["HostConfig"]["SecurityOpt"] is None
        assert inspect(busybox, loose)["HostConfig"]["SecurityOpt"] == ["seccomp=unconfined"]
    finally:
        busybox("rm", "-f", cid, loose)
    bad = run(busybox, "--security-opt", "seccomp=/etc/profile.json", "busybox", "true")
    assert bad.returncode == 125 and "seccomp=unconfined" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
