"""Docker-style image references: ``[host[:port]/]path[:tag][@digest]``.

The grammar follows the distribution project's reference package (the one the
docker CLI uses): path components are lowercase alphanumerics joined by ``.``,
``_``, ``__`` or runs of ``-``; a tag is up to 128 word characters, dots and
dashes; the first component is a registry host when it contains ``.`` or ``:``
or is ``localhost``. Names on Docker Hub are kept in their familiar short form
(``busybox`` rather than ``docker.io/library/busybox``).
"""

from __future__ import annotations

import re

from skiff.errors import InvalidArgument
from skiff.runtime.record import Record

DEFAULT_TAG = "latest"
DEFAULT_DOMAIN = "docker.io"
_HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::[0-9]+)?\Z"
    r"|\[[0-9a-fA-F:.]+\](?::[0-9]+)?\Z"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})\Z")
_MAX_NAME = 255


class Reference(Record):
    """A parsed image reference; ``str()`` gives ``name:tag`` (or ``name@digest``)."""

    name: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    @property
    def domain(self) -> str:
        """The registry host (``docker.io`` for familiar Docker Hub names)."""
        first, sep, _ = self.name.partition("/")
        return first if sep and _is_domain(first) else DEFAULT_DOMAIN

    @property
    def path(self) -> str:
        """The repository path within its registry (``library/busybox`` on the Hub)."""
        first, sep, rest = self.name.partition("/")
        if sep and _is_domain(first):
            return rest
        return self.name if sep else "library/" + self.name

    @property
    def repository(self) -> str:
        """The name without tag or digest (same as ``name``)."""
        return self.name


def _is_domain(component: str) -> bool:
    return ("." in component or ":" in component or component == "localhost"
            or component.lower() != component)


def _bad(text: str, why: str = "") -> InvalidArgument:
    if why:
        return InvalidArgument(f'invalid reference format: {why} ("{text}")')
    return InvalidArgument(f'invalid reference format: "{text}"')


def parse_reference(text: str, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse ``text`` like docker does; a missing tag becomes ``default_tag``.

    A reference with a digest and no tag keeps ``tag=None``. Raises
    InvalidArgument for anything docker would call an invalid reference format.
    """
    if not text or text != text.strip():
        raise _bad(text)
    rest, at, digest = text.partition("@")
    if at:
        if not _DIGEST.match(digest):
            raise _bad(text, "invalid digest")
    else:
        digest = None
    tag = None
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise _bad(text)
    name = _check_name(rest, text)
    if tag is None and digest is None:
        tag = default_tag
    return Reference(name=name, tag=tag, digest=digest)


def _check_name(name: str, text: str) -> str:
    """Validate a repository name and return its familiar (normalized) form."""
    if not name:
        raise _bad(text)
    if len(name) > _MAX_NAME:
        raise _bad(text, f"repository name must not be more than {_MAX_NAME} characters")
    parts = name.split("/")
    domain = None
    if len(parts) > 1 and _is_domain(parts[0]):
        domain, parts = parts[0], parts[1:]
        if not _DOMAIN.match(domain):
            raise _bad(text)
    for part in parts:
        if not _COMPONENT.match(part):
            if _COMPONENT.match(part.lower()):
                raise _bad(text, "repository name must be lowercase")
            raise _bad(text)
    if domain in _HUB_DOMAINS:
        domain = None
        if len(parts) == 2 and parts[0] == "library":
            parts = parts[1:]
    return "/".join(([domain] if domain else []) + parts)


def normalize_tag(text: str) -> str:
    """``busybox`` -> ``busybox:latest``; refuses digests (a tag cannot hold one)."""
    ref = parse_reference(text)
    if ref.digest:
        raise InvalidArgument(f'refusing to create a tag with a digest reference: "{text}"')
    return str(ref)
