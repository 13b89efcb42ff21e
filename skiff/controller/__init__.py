"""The skiff control plane: API server, store, admission and controllers."""
