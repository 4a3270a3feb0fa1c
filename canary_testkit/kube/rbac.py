"""Authentication and RBAC authorization as kube-apiserver does them.

Authentication: a bearer token names a user. The admin token (`ADMIN_TOKEN`, what `KubeSim.api_client()`
and `write_kubeconfig()` use by default) is in group `system:masters`, which kube-apiserver lets do
anything; a ServiceAccount token authenticates as `system:serviceaccount:NS:NAME` with groups
`system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`, and only while the
ServiceAccount exists; a request without a token is `system:anonymous` (`system:unauthenticated`); an
unknown token gets 401.

Authorization: the RBAC authorizer over the Role, ClusterRole, RoleBinding and ClusterRoleBinding
objects stored in the simulated cluster: verbs from the HTTP method (get, list, watch, create, update,
patch, delete, deletecollection), `resource/subresource` and `*/subresource`, apiGroups, resourceNames
(list and watch only with a `metadata.name` field selector; never create or deletecollection),
`*` wildcards, a RoleBinding granting only in its own namespace (also when it names a ClusterRole) and a
ClusterRoleBinding everywhere, User, Group and ServiceAccount subjects. The bootstrap roles
`system:discovery` and `system:public-info-viewer` (discovery, /version, /healthz for everyone) are
built in rather than stored. A refusal is a 403 `Status` worded as kube-apiserver's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from canary_testkit.kube.errors import StatusError, qualified

ADMIN_TOKEN = "kube-sim-token"
RBAC_GROUP = "rbac.authorization.k8s.io"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

_DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/")
_PUBLIC_INFO_URLS = ("/healthz", "/livez", "/readyz", "/version", "/version/")


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity: user name and groups."""

    name: str
    groups: tuple[str, ...] = ()


ADMIN = UserInfo("kube-sim-admin", ("system:masters", AUTHENTICATED))
ANONYMOUS = UserInfo("system:anonymous", (UNAUTHENTICATED,))


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The identity kube-apiserver gives a ServiceAccount's token."""
    return UserInfo(
        f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as the API server's RequestInfo describes it."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    """Set (and `resource` empty) for a non-resource request such as /version or discovery."""

    @property
    def is_resource(self) -> bool:
        return not self.path


def resource_verb(method: str, *, named: bool, watch: bool) -> str:
    """The RBAC verb of a resource request (kube-apiserver's RequestInfo mapping)."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        if named:
            return "get"
        return "watch" if watch else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def field_selector_name(field_selector: str | None) -> str:
    """The name a `metadata.name=X` (or `==`) field selector requires, else ""."""
    for term in (field_selector or "").split(","):
        key, op, value = term.partition("==") if "==" in term else term.partition("=")
        if op and not key.endswith("!") and key.strip() == "metadata.name":
            return value.strip()
    return ""


# -- matching --------------------------------------------------------------------------------------


def _verb_matches(rule: dict[str, Any], verb: str) -> bool:
    verbs = rule.get("verbs") or []
    return "*" in verbs or verb in verbs


def _group_matches(rule: dict[str, Any], group: str) -> bool:
    groups = rule.get("apiGroups") or []
    return "*" in groups or group in groups


def _resource_matches(rule: dict[str, Any], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for entry in rule.get("resources") or []:
        if entry in ("*", combined):
            return True
        if subresource and entry == f"*/{subresource}":
            return True
    return False


def _name_matches(rule: dict[str, Any], name: str) -> bool:
    names = rule.get("resourceNames") or []
    return not names or name in names


def _url_matches(rule: dict[str, Any], path: str) -> bool:
    for entry in rule.get("nonResourceURLs") or []:
        if entry in ("*", path) or (entry.endswith("*") and path.startswith(entry[:-1])):
            return True
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    """Whether one PolicyRule allows the request (rbac/v1's RuleAllows)."""
    if not attrs.is_resource:
        return _verb_matches(rule, attrs.verb) and _url_matches(rule, attrs.path)
    return (
        _verb_matches(rule, attrs.verb)
        and _group_matches(rule, attrs.group)
        and _resource_matches(rule, attrs.resource, attrs.subresource)
        and _name_matches(rule, attrs.name)
    )


def subject_matches(subject: dict[str, Any], user: UserInfo) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace")
        return bool(namespace) and user.name == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"
    return False


_BOOTSTRAP: tuple[tuple[frozenset[str], dict[str, Any]], ...] = (
    (frozenset({AUTHENTICATED}), {"verbs": ["get"], "nonResourceURLs": list(_DISCOVERY_URLS)}),
    (frozenset({AUTHENTICATED, UNAUTHENTICATED}), {"verbs": ["get"], "nonResourceURLs": list(_PUBLIC_INFO_URLS)}),
)


@dataclass(frozen=True)
class Policy:
    """The RBAC objects the authorizer reads, as stored: listed on every decision (no cache to go stale)."""

    objects: Callable[[str, str | None], Iterable[dict[str, Any]]]
    """(plural, namespace) -> stored objects of that rbac.authorization.k8s.io kind."""

    def _role_rules(self, ref: dict[str, Any], namespace: str | None) -> list[dict[str, Any]]:
        kind, name = ref.get("kind"), ref.get("name")
        if ref.get("apiGroup", RBAC_GROUP) != RBAC_GROUP:
            return []
        if kind == "ClusterRole":
            found = [r for r in self.objects("clusterroles", None) if r["metadata"]["name"] == name]
        elif kind == "Role" and namespace:
            found = [r for r in self.objects("roles", namespace) if r["metadata"]["name"] == name]
        else:
            return []
        return list(found[0].get("rules") or []) if found else []

    def rules_for(self, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
        """Every rule that applies to `user` for a request in `namespace` ("" for cluster scope)."""
        rules = [rule for groups, rule in _BOOTSTRAP if groups & set(user.groups)]
        for binding in self.objects("clusterrolebindings", None):
            if any(subject_matches(s, user) for s in binding.get("subjects") or []):
                rules.extend(self._role_rules(binding.get("roleRef") or {}, None))
        if namespace:
            for binding in self.objects("rolebindings", namespace):
                if any(subject_matches(s, user) for s in binding.get("subjects") or []):
                    rules.extend(self._role_rules(binding.get("roleRef") or {}, namespace))
        return rules

    def allows(self, user: UserInfo, attrs: Attributes) -> bool:
        if "system:masters" in user.groups:
            return True
        namespace = attrs.namespace if attrs.is_resource else ""
        return any(rule_allows(rule, attrs) for rule in self.rules_for(user, namespace))


def forbidden(user: UserInfo, attrs: Attributes) -> StatusError:
    """kube-apiserver's 403: `deployments.apps "checkout" is forbidden: User "..." cannot update ...`."""
    if not attrs.is_resource:
        return StatusError(403, f'forbidden: User "{user.name}" cannot {attrs.verb} path "{attrs.path}"')
    what = qualified(attrs.resource, attrs.group)
    subject = f'{what} "{attrs.name}"' if attrs.name else what
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user.name}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.group}" {scope}'
    )
    details: dict[str, Any] = {"group": attrs.group, "kind": attrs.resource}
    if attrs.name:
        details["name"] = attrs.name
    return StatusError(403, message, details=details)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized")


class Authenticator:
    """Bearer tokens to identities. ServiceAccount tokens are valid only while their ServiceAccount exists."""

    def __init__(self, service_account_exists: Callable[[str, str], bool]) -> None:
        self._users: dict[str, UserInfo] = {ADMIN_TOKEN: ADMIN}
        self._service_accounts: dict[str, tuple[str, str]] = {}
        self._exists = service_account_exists

    def add_user(self, token: str, name: str, groups: Iterable[str] = ()) -> None:
        self._users[token] = UserInfo(name, (*groups, AUTHENTICATED))

    def add_service_account(self, token: str, namespace: str, name: str) -> None:
        self._service_accounts[token] = (namespace, name)

    def authenticate(self, authorization: str | None) -> UserInfo:
        """The identity of an `Authorization` header; raises 401 for an unknown or malformed token."""
        if not authorization:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized()
        if token in self._users:
            return self._users[token]
        account = self._service_accounts.get(token)
        if account is not None and self._exists(*account):
            return service_account_user(*account)
        raise unauthorized()
