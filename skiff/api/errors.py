"""APIError: a Kubernetes ``Status`` failure, raised by both client implementations
(HTTP and in-process) and by the API server's registry.

``APIError(status)`` carries the Status dict; ``.code``, ``.reason``, ``.message`` come from
it. The helpers build the Status exactly as the kube-apiserver does (same reasons, same
messages), e.g. ``not_found("pods", "web")`` -> 404 ``pods "web" not found``.
"""
from __future__ import annotations

from typing import Any


class APIError(Exception):
    """A failed API call. ``.code`` (int), ``.reason`` (str), ``.message`` (str), ``.status`` (dict)."""

    def __init__(self, status: dict | int, reason: str = "", message: str = "", **details: Any):
        if isinstance(status, int):
            status = make_status(status, reason, message, **details)
        self.status = status
        self.code = int(status.get("code") or 500)
        self.reason = str(status.get("reason") or "")
        self.message = str(status.get("message") or self.reason or f"HTTP {self.code}")
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"APIError(code={self.code}, reason={self.reason!r}, message={self.message!r})"


def make_status(code: int, reason: str, message: str, *, name: str | None = None,
                kind: str | None = None, group: str | None = None,
                causes: list[dict] | None = None, uid: str | None = None,
                retry_after: int | None = None) -> dict:
    st: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason}
    details: dict[str, Any] = {}
    if name is not None:
        details["name"] = name
    if group:
        details["group"] = group
    if kind is not None:
        details["kind"] = kind
    if uid:
        details["uid"] = uid
    if causes is not None:
        details["causes"] = causes
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    if details:
        st["details"] = details
    st["code"] = code
    return st


def success_status(code: int = 200, **details: Any) -> dict:
    st: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        st["details"] = details
    st["code"] = code
    return st


def qualified(resource: str, group: str = "") -> str:
    """``pods`` / ``leases.coordination.k8s.io``: how Kubernetes names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> APIError:
    return APIError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                    name=name, kind=resource, group=group)


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    return APIError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                    name=name, kind=resource, group=group)


def conflict(resource: str, name: str, why: str = "", group: str = "") -> APIError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return APIError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                    name=name, kind=resource, group=group)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> APIError:
    return APIError(401, "Unauthorized", message)


def forbidden(resource: str, name: str | None, message: str, group: str = "") -> APIError:
    what = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    return APIError(403, "Forbidden", f"{what} is forbidden: {message}", name=name or "",
                    kind=resource, group=group)


def invalid(kind: str, name: str, causes: list[dict], resource: str | None = None,
            group: str = "") -> APIError:
    """422 Invalid, message built like Kubernetes' ``The Pod "web" is invalid: field: msg``."""
    if causes:
        parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
        msg = f'{kind} "{name}" is invalid: ' + (parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]")
    else:
        msg = f'{kind} "{name}" is invalid'
    # details.kind is the Kind (not the resource) for Invalid, as Kubernetes' NewInvalid
    return APIError(422, "Invalid", msg, name=name, kind=kind, group=group, causes=causes)


def unprocessable(message: str) -> APIError:
    """What the apiserver answers when a JSON patch cannot be applied (a failed ``test``...)."""
    return APIError(422, "Invalid", "the server rejected our request due to an error in our request",
                    causes=[{"reason": "UnexpectedServerResponse", "message": message}])


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(message: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", message)


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def path_not_found() -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource")
