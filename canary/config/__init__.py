"""Configuration: per-service SLOs (ServiceSLO) and the units they are written in."""
