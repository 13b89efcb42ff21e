"""--change instructions applied to an image config."""

import pytest

from skiff.errors import InvalidArgument
from skiff.runtime.images.changes import apply_changes

BASE = {"os": "linux", "config": {"Env": ["PATH=/bin", "HOME=/root"]}}


def cfg(*changes, base=BASE):
    return apply_changes(base, list(changes))["config"]


def test_pure():
    before = {"config": {"Env": ["A=1"]}}
    apply_changes(before, ["ENV A=2", "CMD x"])
    assert before == {"config": {"Env": ["A=1"]}}


def test_cmd_forms():
    assert cfg('CMD ["sh", "-c", "echo hi"]')["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg("CMD echo $HOME && ls")["Cmd"] == ["/bin/sh", "-c", "echo $HOME && ls"]
    assert cfg("cmd [not json")["Cmd"] == ["/bin/sh", "-c", "[not json"]


def test_entrypoint_resets_inherited_cmd_only():
    base = {"config": {"Cmd": ["old"]}}
    assert cfg('ENTRYPOINT ["/e"]', base=base) == {"Entrypoint": ["/e"], "Cmd": None}
    out = cfg('CMD ["c"]', "ENTRYPOINT run me", base=base)
    assert out == {"Entrypoint": ["/bin/sh", "-c", "run me"], "Cmd": ["c"]}


def test_env():
    env = cfg('ENV A=1 B="two words" HOME=/home/x C=$HOME/bin D=${NOPE:-dflt} E=a\\ b')["Env"]
    assert env == ["PATH=/bin", "A=1", "B=two words", "HOME=/home/x", "C=/root/bin",
                   "D=dflt", "E=a b"]
    assert cfg("ENV GREETING hello   big world")["Env"][-1] == "GREETING=hello   big world"
    assert cfg("ENV EMPTY=")["Env"][-1] == "EMPTY="
    with pytest.raises(InvalidArgument, match="two arguments"):
        cfg("ENV ONLYKEY")


def test_workdir_user_stopsignal():
    out = cfg("WORKDIR /app", "WORKDIR sub/../src", "USER nobody:nogroup", "STOPSIGNAL SIGQUIT")
    assert out["WorkingDir"] == "/app/src"
    assert out["User"] == "nobody:nogroup"
    assert out["StopSignal"] == "SIGQUIT"
    assert cfg("WORKDIR rel")["WorkingDir"] == "/rel"
    assert cfg("STOPSIGNAL 9")["StopSignal"] == "9"
    with pytest.raises(InvalidArgument, match="invalid signal"):
        cfg("STOPSIGNAL SIGNOPE")
    with pytest.raises(InvalidArgument, match="exactly one argument"):
        cfg("USER a b")


def test_label_expose_volume():
    out = cfg('LABEL a=b "c d"="e f"', "LABEL legacy value here",
              "EXPOSE 80 53/udp 8000-8002/tcp", 'VOLUME ["/data", "/logs"]', "VOLUME /x /y")
    assert out["Labels"] == {"a": "b", "c d": "e f", "legacy": "value here"}
    assert out["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {},
                                   "8001/tcp": {}, "8002/tcp": {}}
    assert out["Volumes"] == {"/data": {}, "/logs": {}, "/x": {}, "/y": {}}
    with pytest.raises(InvalidArgument, match="invalid port"):
        cfg("EXPOSE 99999")
    with pytest.raises(InvalidArgument, match="protocol"):
        cfg("EXPOSE 80/icmp")


def test_unsupported_and_empty():
    with pytest.raises(InvalidArgument) as e:
        cfg("RUN apt-get update")
    assert str(e.value).startswith('unsupported --change instruction "RUN": ')
    with pytest.raises(InvalidArgument, match="requires at least one argument"):
        cfg("CMD")
    with pytest.raises(InvalidArgument):
        cfg("")
    with pytest.raises(InvalidArgument, match="unterminated"):
        cfg('ENV A="oops')


def test_missing_config_section():
    assert apply_changes({}, ["USER 1000"]) == {"config": {"User": "1000"}}
