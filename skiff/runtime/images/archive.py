"""Image archives: ``skiff save`` and ``skiff load``.

Two formats, as docker, podman and skopeo write them:

- **docker-archive** (``docker save`` before docker 25): ``manifest.json``
  (``[{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<id>/layer.tar"]}]``),
  ``repositories``, the config ``<hex>.json``, and one directory per layer
  with ``VERSION``, ``json`` and the uncompressed ``layer.tar``;
- **OCI image layout** (``--format oci``): ``oci-layout``, ``index.json`` and
  ``blobs/sha256/<hex>``.

The writer is in ``archive_save``, the reader in ``archive_load``; this module
holds what they share and the two entry points.
"""

from __future__ import annotations

import hashlib

MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)

ANN_REF_NAME = "org.opencontainers.image.ref.name"
ANN_CONTAINERD_NAME = "io.containerd.image.name"

FORMATS = ("docker", "oci")

# layer media types, docker -> OCI
TO_OCI_LAYER = {
    MEDIA_DOCKER_LAYER: MEDIA_OCI_LAYER,
    MEDIA_DOCKER_LAYER_GZIP: MEDIA_OCI_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": MEDIA_OCI_LAYER_GZIP,
}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI chain ids of a layer stack (lowest first)."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + sha256_hex(f"{out[-1]} {d}".encode()))
    return out


def full_name(ref: str) -> str:
    """``busybox:latest`` -> ``docker.io/library/busybox:latest`` (containerd's form)."""
    from .reference import parse_reference

    r = parse_reference(ref)
    return f"{r.domain}/{r.path}:{r.tag or 'latest'}"


def save(store, names: list[str], out, fmt: str = "docker", progress=None) -> None:
    """Write the images ``names`` to the binary file ``out`` (see archive_save)."""
    from .archive_save import save_images

    save_images(store, names, out, fmt, progress)


def load(store, src, source_name: str, progress=None) -> list[str]:
    """Load every image of the archive ``src``; returns docker's "Loaded image" lines."""
    from .archive_load import load_archive

    return load_archive(store, src, source_name, progress)
