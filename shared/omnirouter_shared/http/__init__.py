"""HTTP helpers shared by the services: ops routes, JSON errors, request metrics."""
