"""Docker-style reference parsing."""

import pytest

from skiff.errors import InvalidArgument
from skiff.runtime.images.reference import Reference, normalize_tag, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, name, tag, digest", [
    ("busybox", "busybox", "latest", None),
    ("busybox:1.35", "busybox", "1.35", None),
    ("library/busybox", "library/busybox", "latest", None),
    ("docker.io/library/busybox:1", "busybox", "1", None),
    ("docker.io/foo/bar", "foo/bar", "latest", None),
    ("127.0.0.1:5000/a/b:tag", "127.0.0.1:5000/a/b", "tag", None),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b", "latest", None),
    ("localhost/x", "localhost/x", "latest", None),
    ("localhost:5000", "localhost", "5000", None),
    ("my-registry.example.com/team/app_1:v1.2-rc", "my-registry.example.com/team/app_1", "v1.2-rc", None),
    ("a__b/c--d.e", "a__b/c--d.e", "latest", None),
    (f"busybox@{DIGEST}", "busybox", None, DIGEST),
    (f"busybox:1@{DIGEST}", "busybox", "1", DIGEST),
    ("Registry.Example.com/app", "Registry.Example.com/app", "latest", None),
])
def test_parse(text, name, tag, digest):
    ref = parse_reference(text)
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)


def test_str():
    assert str(parse_reference("busybox")) == "busybox:latest"
    assert str(parse_reference("h:5000/a/b:t")) == "h:5000/a/b:t"
    assert str(parse_reference(f"busybox@{DIGEST}")) == f"busybox@{DIGEST}"
    assert str(Reference("x", "y")) == "x:y"


def test_domain_and_path():
    assert parse_reference("busybox").domain == "docker.io"
    assert parse_reference("busybox").path == "library/busybox"
    assert parse_reference("foo/bar").path == "foo/bar"
    ref = parse_reference("127.0.0.1:5000/a/b:tag")
    assert (ref.domain, ref.path) == ("127.0.0.1:5000", "a/b")


def test_uppercase_is_docker_message():
    with pytest.raises(InvalidArgument, match="repository name must be lowercase"):
        parse_reference("Foo")
    with pytest.raises(InvalidArgument, match="repository name must be lowercase"):
        parse_reference("foo/Bar:1")


@pytest.mark.parametrize("text", [
    "", " busybox", "busybox:", ":tag", "foo/", "/foo", "foo//bar", "foo..bar", "-foo",
    "foo-", "foo:bad tag", "foo:" + "t" * 129, "foo@sha256:abc", "foo@md5:" + "a" * 32,
    "a" * 256, "foo:-x", "fo o",
])
def test_invalid(text):
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        parse_reference(text)


def test_invalid_message_names_the_input():
    with pytest.raises(InvalidArgument) as e:
        parse_reference("foo//bar")
    assert str(e.value) == 'invalid reference format: "foo//bar"'


def test_normalize_tag():
    assert normalize_tag("busybox") == "busybox:latest"
    assert normalize_tag("a/b:1") == "a/b:1"
    with pytest.raises(InvalidArgument, match="digest"):
        normalize_tag(f"busybox@{DIGEST}")
