import pytest

from skiff.controller.nodeipam import CIDRAllocator, CIDRFull, node_pod_cidrs


def test_allocates_distinct_blocks_in_order():
    a = CIDRAllocator("10.244.0.0/16")
    got = [a.allocate() for _ in range(3)]
    assert got == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]


def test_never_hands_out_one_in_use_and_restart_reuses():
    a = CIDRAllocator("10.244.0.0/16")
    # a restarted controller learns the blocks from the Node objects first
    assert a.occupy("10.244.0.0/24") and a.occupy("10.244.2.0/24")
    assert a.allocate() == "10.244.1.0/24"
    assert a.allocate() == "10.244.3.0/24"
    assert not a.occupy("192.168.0.0/24")       # not ours: ignored
    assert not a.occupy("10.244.0.0/25")        # wrong size


def test_release_and_full():
    a = CIDRAllocator("10.0.0.0/30", node_mask=31)
    x, y = a.allocate(), a.allocate()
    assert {x, y} == {"10.0.0.0/31", "10.0.0.2/31"}
    with pytest.raises(CIDRFull):
        a.allocate()
    a.release(x)
    assert a.is_free(x)
    assert a.allocate() == x


def test_node_pod_cidrs():
    assert node_pod_cidrs({"spec": {"podCIDR": "10.244.1.0/24"}}) == ["10.244.1.0/24"]
    assert node_pod_cidrs({"spec": {"podCIDRs": ["10.244.1.0/24"], "podCIDR": "10.244.1.0/24"}}) == ["10.244.1.0/24"]
    assert node_pod_cidrs({"spec": {}}) == []


def test_bad_masks():
    with pytest.raises(ValueError):
        CIDRAllocator("10.244.0.0/16", node_mask=8)
