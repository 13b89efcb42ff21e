"""The node's capacity as the agent reports it: cpu, memory, pods, and ephemeral-storage (the
filesystem of the agent's root, as the kubelet reports its root's), which the scheduler fits
pods' ephemeral-storage requests against."""
import os

from skiff.agent.node import capacity, node_status


def test_ephemeral_storage_is_the_root_filesystem(tmp_path):
    st = os.statvfs(tmp_path)
    want = f"{st.f_blocks * st.f_frsize // 1024}Ki"
    cap = capacity(str(tmp_path))
    assert cap["ephemeral-storage"] == want
    assert set(cap) == {"cpu", "memory", "pods", "ephemeral-storage"}
    # a root not made yet: its nearest existing parent's filesystem
    assert capacity(str(tmp_path / "not" / "yet"))["ephemeral-storage"] == want
    status = node_status("10.0.0.1", 10250, None, str(tmp_path))
    assert status["allocatable"]["ephemeral-storage"] == want == status["capacity"]["ephemeral-storage"]
