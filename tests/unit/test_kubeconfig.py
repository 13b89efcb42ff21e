"""Kubeconfig: lookup order, current-context resolution, skiff's own 0600 atomic file."""
from __future__ import annotations

import base64
import os
import stat

import pytest
import yaml

from skiff.api.kubeconfig import (KubeconfigError, find_kubeconfig, resolve_kubeconfig,
                                  write_kubeconfig)


def test_write_is_0600_and_resolves(tmp_path):
    p = tmp_path / "dir" / "kubeconfig"
    write_kubeconfig(str(p), "https://10.0.0.1:6443", "tok")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    doc = yaml.safe_load(p.read_text())
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert doc["users"][0]["user"]["token"] == "tok"
    assert doc["current-context"] == "skiff" and doc["contexts"][0]["name"] == "skiff"
    server, token, ca, insecure = resolve_kubeconfig(str(p))
    assert (server, token, ca, insecure) == ("https://10.0.0.1:6443", "tok", None, False)


def test_rewrite_is_atomic_and_tightens_mode(tmp_path):
    p = tmp_path / "kubeconfig"
    p.write_text("old")
    os.chmod(p, 0o644)
    ino = os.stat(p).st_ino
    write_kubeconfig(str(p), "http://127.0.0.1:1", "t2", name="c2")
    assert os.stat(p).st_ino != ino                      # replaced by rename, not rewritten in place
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["kubeconfig"]         # no temporary left behind
    assert resolve_kubeconfig(str(p)).server == "http://127.0.0.1:1"


def test_lookup_order(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert find_kubeconfig() == str(home / ".skiff" / "kubeconfig")
    env = tmp_path / "env-config"
    env.write_text("{}")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}{os.pathsep}{env}")
    assert find_kubeconfig() == str(env)                  # first existing entry of the list
    assert find_kubeconfig(str(tmp_path / "explicit")) == str(tmp_path / "explicit")


def test_default_path_used(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    write_kubeconfig(str(home / ".skiff" / "kubeconfig"), "http://h:1", "t")
    assert resolve_kubeconfig().server == "http://h:1"


MULTI = {
    "apiVersion": "v1", "kind": "Config",
    "clusters": [
        {"name": "a", "cluster": {"server": "https://a:6443/", "certificate-authority": "ca/a.crt"}},
        {"name": "b", "cluster": {"server": "https://b:6443", "insecure-skip-tls-verify": True}},
        {"name": "c", "cluster": {"server": "https://c:6443",
                                  "certificate-authority-data": base64.b64encode(b"PEM-DATA").decode()}},
    ],
    "users": [{"name": "ua", "user": {"token": "ta"}}, {"name": "ub", "user": {"tokenFile": "tok.txt"}}],
    "contexts": [{"name": "ctx-a", "context": {"cluster": "a", "user": "ua"}},
                 {"name": "ctx-b", "context": {"cluster": "b", "user": "ub"}},
                 {"name": "ctx-c", "context": {"cluster": "c"}},
                 {"name": "broken", "context": {"cluster": "zzz", "user": "ua"}}],
    "current-context": "ctx-b",
}


def test_current_context_and_overrides(tmp_path):
    p = tmp_path / "cfg"
    p.write_text(yaml.safe_dump(MULTI))
    (tmp_path / "tok.txt").write_text("from-file\n")
    acc = resolve_kubeconfig(str(p))
    assert acc == ("https://b:6443", "from-file", None, True)
    acc = resolve_kubeconfig(str(p), context="ctx-a")
    assert acc.server == "https://a:6443" and acc.token == "ta"
    assert acc.ca_file == str(tmp_path / "ca" / "a.crt")   # relative to the kubeconfig's directory
    acc = resolve_kubeconfig(str(p), context="ctx-c")
    assert acc.token is None
    with open(acc.ca_file, "rb") as f:
        assert f.read() == b"PEM-DATA"
    with pytest.raises(KubeconfigError, match="no cluster named 'zzz'"):
        resolve_kubeconfig(str(p), context="broken")
    with pytest.raises(KubeconfigError, match="no context named 'nope'"):
        resolve_kubeconfig(str(p), context="nope")


def test_errors_name_the_file(tmp_path):
    with pytest.raises(KubeconfigError, match=str(tmp_path / "none")):
        resolve_kubeconfig(str(tmp_path / "none"))
    bad = tmp_path / "bad"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(KubeconfigError, match="not a kubeconfig"):
        resolve_kubeconfig(str(bad))
    nocur = tmp_path / "nocur"
    nocur.write_text(yaml.safe_dump({**MULTI, "current-context": ""}))
    with pytest.raises(KubeconfigError, match="current-context"):
        resolve_kubeconfig(str(nocur))
