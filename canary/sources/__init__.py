"""Sources: Mimir (PromQL RED metrics) and Tempo (TraceQL trace error rates), batched across targets."""
