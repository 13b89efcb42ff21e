"""Containers: create, start, stop, kill, exec, logs, remove; each verb in its own module.

Names are re-exported lazily (PEP 562) so that importing this package costs
nothing on the CLI's start-up path.
"""

_EXPORTS = {
    "ContainerStore": "store", "Container": "store", "ContainerSpec": "spec",
    "CreateOptions": "create", "create": "create", "start": "start", "Attachment": "start",
    "stop": "stop", "kill": "stop", "wait_stopped": "stop", "remove": "remove",
    "exec_in": "exec", "inspect_container": "inspect", "State": "state",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(name)
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
