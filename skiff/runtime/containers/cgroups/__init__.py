"""cgroup v1 and v2 drivers behind one interface, with host layout detection."""

from .base import Cgroup, CgroupDriver, Limits, parse_cpus, parse_memory
from .detect import detect

__all__ = ["Limits", "Cgroup", "CgroupDriver", "detect", "parse_memory", "parse_cpus"]
