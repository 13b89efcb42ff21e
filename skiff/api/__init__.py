"""The skiff API: Kubernetes-shaped objects, their JSON Schemas, validation and manifest loading."""
