"""The controller: watches annotated Deployments, analyses canaries on schedule, rolls back or promotes."""
