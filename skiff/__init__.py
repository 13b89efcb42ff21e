"""skiff: a declarative container orchestrator with its own daemonless runtime core."""

__version__ = "0.1.0"
