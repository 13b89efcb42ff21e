"""Workload controllers helpers: pure logic (logic.py) and shared informers (shared.py)."""
