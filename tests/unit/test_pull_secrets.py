"""Image pull Secrets read as the kubelet reads them, and the per-pull credentials directory."""
import base64
import json
import os
import stat

from skiff.agent.images import credentials_dir, docker_auths


def _secret(key, obj):
    return {"data": {key: base64.b64encode(json.dumps(obj).encode()).decode()}}


def test_both_secret_formats():
    entry = {"auth": base64.b64encode(b"u:p").decode()}
    assert docker_auths(_secret(".dockerconfigjson", {"auths": {"reg:5000": entry}})) == {"reg:5000": entry}
    assert docker_auths(_secret(".dockercfg", {"https://reg:5000": entry})) == {"https://reg:5000": entry}
    assert docker_auths({"data": {"other": "eA=="}}) == {}
    assert docker_auths({"data": {".dockerconfigjson": base64.b64encode(b"not json").decode()}}) == {}


def test_credentials_dir_is_private_and_keys_are_hosts(tmp_path, monkeypatch):
    entry = {"auth": base64.b64encode(b"u:p").decode()}
    d = credentials_dir(str(tmp_path), {"https://reg.example:5000/": entry, "docker.io": entry})
    assert os.path.dirname(d) == str(tmp_path / "tmp")
    cfg = os.path.join(d, "config.json")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700 and stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    monkeypatch.setenv("SKIFF_CONFIG", d)
    from skiff.runtime.images.auth import get_credentials
    assert get_credentials("reg.example:5000") == ("u", "p")
    assert get_credentials("registry-1.docker.io") == ("u", "p")
