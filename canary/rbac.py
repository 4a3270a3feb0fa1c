"""Read access to the webhook Secrets that ServiceSLOs name, one namespace at a time.

`manifests/` grants the controller no Secret outside its own namespace. A team whose ServiceSLO names
`notify.slack.webhookSecretRef` or `notify.webhook.urlSecretRef` in its namespace grants `get` on
exactly those Secrets (by `resourceNames`) with a Role and a RoleBinding in that namespace:
`canary rbac grant-secrets -n NS --slo FILE` (or `--secret NAME`) prints them, `--apply` applies them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from canary.config.slo import ServiceSLO

GRANT_NAME = "mop-canary-webhook-secrets"
CONTROLLER_SERVICE_ACCOUNT = ("mop-canary", "mop-canary")
"""(namespace, name) of the ServiceAccount `manifests/` runs the controller as."""
LABELS = {"app.kubernetes.io/name": "mop-canary", "app.kubernetes.io/part-of": "mop"}


def webhook_secrets(slos: Iterable[ServiceSLO], namespace: str) -> list[str]:
    """The Secret names the ServiceSLOs of `namespace` read their Slack and webhook URLs from, sorted."""
    names: set[str] = set()
    for slo in slos:
        if (slo.metadata.namespace or namespace) != namespace:
            continue
        notify = slo.spec.notify
        if notify.slack is not None and notify.slack.webhook_secret_ref is not None:
            names.add(notify.slack.webhook_secret_ref.name)
        if notify.webhook is not None:
            names.add(notify.webhook.url_secret_ref.name)
    return sorted(names)


def secret_grant(
    namespace: str,
    secrets: Iterable[str],
    service_account: tuple[str, str] = CONTROLLER_SERVICE_ACCOUNT,
) -> list[dict[str, Any]]:
    """A Role allowing `get` on exactly `secrets` in `namespace`, and the RoleBinding that gives it to the
    controller's ServiceAccount. Raises ValueError when there is no Secret to grant."""
    names = sorted(set(secrets))
    if not names:
        raise ValueError(f"namespace {namespace}: no Secret to grant (name them, or give SLOs that reference some)")
    metadata = {"name": GRANT_NAME, "namespace": namespace, "labels": dict(LABELS)}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata,
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {**metadata, "labels": dict(LABELS)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": GRANT_NAME},
        "subjects": [{"kind": "ServiceAccount", "namespace": service_account[0], "name": service_account[1]}],
    }
    return [role, binding]
