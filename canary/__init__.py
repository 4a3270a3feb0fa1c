"""mop-canary: a Kubernetes canary controller guarded by the Managed Observability Platform."""

__version__ = "0.1.0"
