"""The node agent (the kubelet's role): pod workers driving the runtime core."""
