"""Persistent storage in the control plane: the PV binder and skiff's local-path provisioner
(:mod:`.controller`), their pure decisions (:mod:`.logic`)."""
