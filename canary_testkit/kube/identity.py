"""The controller's identity in a simulated cluster, exactly as `manifests/` installs it on a real one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from canary.stack.kustomize import load_kustomization
from canary.stack.render import repo_dir
from canary_testkit.kube.rbac import service_account_user
from canary_testkit.kube.sim import KubeSim

IDENTITY_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
"""What of the Kustomize base defines who the controller is and what it may do (applied in this order)."""


@dataclass(frozen=True)
class ControllerIdentity:
    """The ServiceAccount the controller's Deployment in `manifests/` runs as, and a bearer token of it."""

    namespace: str
    service_account: str
    token: str

    @property
    def user(self) -> str:
        """The user name kube-apiserver gives the token (`system:serviceaccount:NS:NAME`)."""
        return service_account_user(self.namespace, self.service_account).name


def install_controller_identity(sim: KubeSim, manifests: Path | None = None) -> ControllerIdentity:
    """Apply the Namespace, ServiceAccount and RBAC objects of the Kustomize base (default: the
    repository's `manifests/`) as they are rendered, and return the controller's ServiceAccount
    (the one its Deployment names) with a new token."""
    objects = load_kustomization(manifests or repo_dir("manifests"))
    for kind in IDENTITY_KINDS:
        for obj in objects:
            if obj["kind"] == kind:
                sim.apply(obj, manager="kubectl", force=True)
    controllers = [o for o in objects if o["kind"] == "Deployment"]
    if len(controllers) != 1:
        raise ValueError(f"expected one controller Deployment in the Kustomize base, found {len(controllers)}")
    deployment = controllers[0]
    namespace = deployment["metadata"]["namespace"]
    account = deployment["spec"]["template"]["spec"].get("serviceAccountName") or "default"
    if sim.get("v1", "serviceaccounts", namespace, account) is None:
        raise ValueError(f"the Kustomize base runs the controller as ServiceAccount {namespace}/{account}, "
                         "which it does not define")
    return ControllerIdentity(namespace, account, sim.service_account_token(namespace, account))
