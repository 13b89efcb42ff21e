"""The scheduler (kube-scheduler's model): filters, scores, a cache with assumed pods, one loop."""
from .scheduler import DEFAULT_SCHEDULER, Scheduler, run_scheduler

__all__ = ["Scheduler", "run_scheduler", "DEFAULT_SCHEDULER"]
