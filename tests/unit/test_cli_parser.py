"""Unit tests for skiff.cli.parser (docker-style flag parsing) and skiff.cli.main.run()."""

import os

import pytest

from skiff.cli import exec as exec_cli
from skiff.cli import main as cli_main
from skiff.cli import ps as ps_cli
from skiff.cli import run as run_cli
from skiff.cli.parser import Command, HelpRequested, Opt, UsageError, parse
from skiff.errors import SkiffError

RUN = run_cli.COMMAND
EXEC = exec_cli.COMMAND
PS = ps_cli.COMMAND

# A synthetic command for shapes the real ones do not have (an int short flag, -p).
PORTS = Command("port", "port [OPTIONS] [ARG...]", "test", [
    Opt(("-p", "--publish"), "publish", "list"),
    Opt(("-n", "--count"), "count", "int"),
    Opt(("-v", "--verbose"), "verbose"),
    Opt(("--name",), "name", "str"),
])


def usage_error(cmd, argv) -> UsageError:
    with pytest.raises(UsageError) as ei:
        parse(cmd, argv)
    assert ei.value.exit_code == 125
    assert isinstance(ei.value, SkiffError)
    return ei.value


# -- defaults -------------------------------------------------------------------------


def test_defaults_bool_false_list_empty_str_none():
    values, args = parse(RUN, ["busybox"])
    assert args == ["busybox"]
    assert values["detach"] is False and values["tty"] is False and values["rm"] is False
    assert values["env"] == [] and values["label"] == [] and values["ulimit"] == []
    assert values["name"] is None and values["hostname"] is None
    assert values["pids_limit"] is None


def test_list_defaults_are_not_shared_between_parses():
    v1, _ = parse(RUN, ["-e", "A=1", "busybox"])
    v2, _ = parse(RUN, ["busybox"])
    assert v1["env"] == ["A=1"]
    assert v2["env"] == []


def test_list_default_given_is_copied():
    cmd = Command("x", "x", "x", [Opt(("-a",), "a", "list", default=["d"])])
    v1, _ = parse(cmd, ["-a", "1"])
    v2, _ = parse(cmd, [])
    assert v1["a"] == ["d", "1"]
    assert v2["a"] == ["d"]


# -- clusters ---------------------------------------------------------------------------


def test_cluster_it():
    values, args = parse(RUN, ["-it", "busybox", "sh"])
    assert values["interactive"] is True and values["tty"] is True
    assert values["detach"] is False
    assert args == ["busybox", "sh"]


def test_cluster_itd():
    values, args = parse(RUN, ["-itd", "busybox"])
    assert (values["interactive"], values["tty"], values["detach"]) == (True, True, True)
    assert args == ["busybox"]


def test_cluster_ending_with_value_flag_takes_next_arg():
    values, args = parse(RUN, ["-ite", "A=1", "busybox"])
    assert values["interactive"] and values["tty"]
    assert values["env"] == ["A=1"]
    assert args == ["busybox"]


def test_cluster_with_attached_value_after_bools():
    values, args = parse(RUN, ["-dtwaaa", "busybox"])
    assert values["detach"] and values["tty"]
    assert values["workdir"] == "aaa"
    assert args == ["busybox"]


def test_cluster_unknown_letter():
    e = usage_error(RUN, ["-iZ", "busybox"])
    assert "unknown shorthand flag: 'Z' in -iZ" in str(e)


# -- attached and separate values -------------------------------------------------------------


def test_short_attached_value_with_equals_in_value():
    values, _ = parse(RUN, ["-eK=V", "busybox"])
    assert values["env"] == ["K=V"]


def test_short_attached_value_with_leading_equals():
    values, _ = parse(RUN, ["-e=K=V", "busybox"])
    assert values["env"] == ["K=V"]


def test_short_attached_digits():
    values, args = parse(PORTS, ["-p8080", "-p", "9090:90", "-n3"])
    assert values["publish"] == ["8080", "9090:90"]
    assert values["count"] == 3
    assert args == []


def test_long_with_equals_and_separate():
    v1, _ = parse(RUN, ["--name=x", "busybox"])
    v2, _ = parse(RUN, ["--name", "x", "busybox"])
    assert v1["name"] == "x" and v2["name"] == "x"


def test_long_with_equals_empty_value():
    values, args = parse(RUN, ["--entrypoint=", "busybox"])
    assert values["entrypoint"] == ""
    assert args == ["busybox"]


def test_long_separate_value_may_look_like_a_flag():
    values, args = parse(RUN, ["--pids-limit", "-1", "--name", "--weird", "busybox"])
    assert values["pids_limit"] == -1
    assert values["name"] == "--weird"
    assert args == ["busybox"]


def test_long_alias_same_dest():
    values, _ = parse(RUN, ["--net", "host", "busybox"])
    assert values["network"] == "host"
    values, _ = parse(RUN, ["--network=none", "busybox"])
    assert values["network"] == "none"


def test_last_str_value_wins():
    values, _ = parse(RUN, ["--name", "a", "--name", "b", "busybox"])
    assert values["name"] == "b"


def test_bool_long_with_explicit_value():
    values, _ = parse(RUN, ["--rm=false", "--tty=true", "--detach=0", "-i", "busybox"])
    assert values["rm"] is False
    assert values["tty"] is True
    assert values["detach"] is False
    assert values["interactive"] is True


def test_bool_long_does_not_consume_next_arg():
    values, args = parse(RUN, ["--rm", "busybox", "true"])
    assert values["rm"] is True
    assert args == ["busybox", "true"]


# -- repeatable flags -------------------------------------------------------------------------


def test_repeatable_list_flags_keep_order_across_forms():
    values, _ = parse(RUN, ["-e", "A=1", "--env", "B=2", "-eC=3", "--env=D=4", "busybox"])
    assert values["env"] == ["A=1", "B=2", "C=3", "D=4"]


def test_repeatable_labels_and_ulimits():
    values, _ = parse(RUN, ["-l", "a=b", "--label", "c", "--ulimit", "nofile=1:2",
                            "--ulimit=nproc=3", "busybox"])
    assert values["label"] == ["a=b", "c"]
    assert values["ulimit"] == ["nofile=1:2", "nproc=3"]


# -- positionals, `--` and interspersed -------------------------------------------------------


def test_run_stops_at_first_positional():
    values, args = parse(RUN, ["busybox", "ls", "-la"])
    assert args == ["busybox", "ls", "-la"]
    assert values["env"] == []


def test_run_flags_after_image_belong_to_the_command():
    values, args = parse(RUN, ["-d", "busybox", "-e", "X=1", "--rm", "--help", "-h"])
    assert values["detach"] is True
    assert values["rm"] is False and values["env"] == []
    assert args == ["busybox", "-e", "X=1", "--rm", "--help", "-h"]


def test_run_double_dash_inside_command_is_kept():
    _, args = parse(RUN, ["busybox", "--", "ls"])
    assert args == ["busybox", "--", "ls"]


def test_double_dash_terminates_flags():
    values, args = parse(RUN, ["-d", "--", "-image-", "-e", "x"])
    assert values["detach"] is True
    assert values["env"] == []
    assert args == ["-image-", "-e", "x"]


def test_double_dash_terminates_flags_interspersed_command():
    values, args = parse(PORTS, ["-v", "--", "-n", "5"])
    assert values["verbose"] is True and values["count"] is None
    assert args == ["-n", "5"]


def test_interspersed_command_takes_flags_after_positionals():
    values, args = parse(PORTS, ["a", "-v", "b", "--name", "n", "c"])
    assert values["verbose"] is True and values["name"] == "n"
    assert args == ["a", "b", "c"]


def test_exec_stops_at_first_positional():
    values, args = parse(EXEC, ["-it", "c1", "sh", "-c", "echo -e hi"])
    assert values["interactive"] and values["tty"]
    assert args == ["c1", "sh", "-c", "echo -e hi"]


def test_single_dash_is_positional():
    _, args = parse(PORTS, ["-", "x"])
    assert args == ["-", "x"]


# -- help -------------------------------------------------------------------------------------


def test_run_dash_h_is_hostname():
    values, args = parse(RUN, ["-h", "myhost", "busybox"])
    assert values["hostname"] == "myhost"
    assert args == ["busybox"]


def test_run_dash_h_attached_hostname():
    values, _ = parse(RUN, ["-hmyhost", "busybox"])
    assert values["hostname"] == "myhost"


def test_run_long_help_is_help():
    with pytest.raises(HelpRequested):
        parse(RUN, ["--help"])


def test_run_long_help_before_image_even_with_other_flags():
    with pytest.raises(HelpRequested):
        parse(RUN, ["-d", "--help", "busybox"])


@pytest.mark.parametrize("cmd", [EXEC, PS])
def test_dash_h_is_help_when_not_defined(cmd):
    with pytest.raises(HelpRequested):
        parse(cmd, ["-h"])


def test_format_help_lists_flags():
    text = RUN.format_help()
    assert "Usage:  skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]" in text
    assert "-h, --hostname string" in text
    assert "-d, --detach" in text
    assert "-h, --help" in text


# -- errors -----------------------------------------------------------------------------------


def test_unknown_long_flag():
    e = usage_error(RUN, ["--bogus", "busybox"])
    assert str(e).startswith("unknown flag: --bogus")
    assert "skiff run --help" in str(e)


def test_unknown_long_flag_with_value():
    e = usage_error(PS, ["--format={{.ID}}"])
    assert str(e).startswith("unknown flag: --format\n")


def test_unknown_short_flag():
    e = usage_error(PS, ["-x"])
    assert "unknown shorthand flag: 'x' in -x" in str(e)


def test_long_flag_missing_value():
    e = usage_error(RUN, ["--name"])
    assert str(e) == "flag needs an argument: --name"


def test_short_flag_missing_value():
    e = usage_error(RUN, ["-e"])
    assert str(e) == "flag needs an argument: 'e' in -e"


def test_int_flag_bad_value():
    e = usage_error(RUN, ["--pids-limit", "lots", "busybox"])
    assert str(e) == 'invalid argument "lots" for "--pids-limit" flag: not a number'


def test_int_flag_bad_attached_short_value():
    e = usage_error(RUN, ["-cabc", "busybox"])
    assert 'invalid argument "abc" for "-c" flag' in str(e)


def test_int_flag_good_values():
    values, _ = parse(RUN, ["-c", "512", "--stop-timeout=3", "--pids-limit=-1", "busybox"])
    assert values["cpu_shares"] == 512
    assert values["stop_timeout"] == 3
    assert values["pids_limit"] == -1


def test_run_requires_an_image():
    e = usage_error(RUN, ["-d"])
    assert str(e).startswith('"skiff run" requires at least 1 argument.')
    assert "Usage:  skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]" in str(e)


def test_exec_requires_two_arguments():
    e = usage_error(EXEC, ["c1"])
    assert '"skiff exec" requires at least 2 arguments.' in str(e)
    _, args = parse(EXEC, ["c1", "true"])
    assert args == ["c1", "true"]


def test_ps_accepts_no_arguments():
    e = usage_error(PS, ["-a", "extra"])
    assert '"skiff ps" requires exactly 0 arguments.' in str(e)
    values, args = parse(PS, ["-aq"])
    assert values["all"] and values["quiet"] and args == []


def test_between_min_and_max():
    cmd = Command("two", "two A [B]", "t", [], min_args=1, max_args=2)
    assert parse(cmd, ["a"])[1] == ["a"]
    assert parse(cmd, ["a", "b"])[1] == ["a", "b"]
    e = usage_error(cmd, ["a", "b", "c"])
    assert "requires between 1 and 2 argument" in str(e)
    usage_error(cmd, [])


def test_exactly_one():
    cmd = Command("one", "one A", "t", [], min_args=1, max_args=1)
    e = usage_error(cmd, [])
    assert '"skiff one" requires exactly 1 argument.' in str(e)


# -- skiff.cli.main.run -----------------------------------------------------------------------


class FakeImage:
    def __init__(self, ref):
        self.id = "sha256:" + "ab" * 32
        self.config = {"config": {"Cmd": ["sh"]}}

    def layer_dirs(self):
        return []


class FakeImages:
    def resolve(self, ref):
        return FakeImage(ref)


def _make_container(root: str, name: str):
    from skiff.runtime.containers.create import CreateOptions, create
    from skiff.runtime.containers.store import ContainerStore
    from skiff.runtime.root import Root
    return create(ContainerStore(Root(root)), FakeImages(),
                  CreateOptions(image="busybox", name=name, network="none"))


def test_main_help(capsys):
    assert cli_main.run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage:  skiff [OPTIONS] COMMAND" in out
    assert "  run " in out and "  ps " in out


def test_main_no_args_prints_usage(capsys):
    assert cli_main.run([]) == 0
    assert "Usage:  skiff [OPTIONS] COMMAND" in capsys.readouterr().out


def test_main_version(capsys):
    assert cli_main.run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("skiff version ")


def test_main_unknown_global_flag(capsys):
    assert cli_main.run(["--bogus", "ps"]) == 125
    assert "unknown flag: --bogus" in capsys.readouterr().err


def test_main_unknown_verb(capsys):
    assert cli_main.run(["frobnicate"]) == 125
    assert "skiff: 'frobnicate' is not a skiff command." in capsys.readouterr().err


def test_main_verb_help(capsys):
    assert cli_main.run(["run", "--help"]) == 0
    assert "Usage:  skiff run [OPTIONS] IMAGE" in capsys.readouterr().out


def test_main_verb_unknown_flag(capsys, tmp_path):
    assert cli_main.run(["--root", str(tmp_path), "run", "--bogus", "busybox"]) == 125
    err = capsys.readouterr().err
    assert err.startswith("Error: unknown flag: --bogus")


def test_main_verb_bad_int(capsys, tmp_path):
    assert cli_main.run(["--root", str(tmp_path), "run", "--pids-limit", "x", "busybox"]) == 125
    assert 'invalid argument "x" for "--pids-limit" flag' in capsys.readouterr().err


def test_main_root_before_verb(capsys, tmp_path):
    root = str(tmp_path / "r")
    c = _make_container(root, "web")
    assert cli_main.run(["--root", root, "ps", "-a", "-q"]) == 0
    assert capsys.readouterr().out.split() == [c.id[:12]]


def test_main_root_equals_form(capsys, tmp_path):
    root = str(tmp_path / "r")
    c = _make_container(root, "web")
    assert cli_main.run([f"--root={root}", "ps", "-aq", "--no-trunc"]) == 0
    assert capsys.readouterr().out.split() == [c.id]


def test_main_root_isolates(capsys, tmp_path):
    _make_container(str(tmp_path / "r1"), "web")
    assert cli_main.run(["--root", str(tmp_path / "r2"), "ps", "-aq"]) == 0
    assert capsys.readouterr().out.split() == []


def test_main_container_ls_alias_is_ps(capsys, tmp_path):
    root = str(tmp_path / "r")
    c = _make_container(root, "web")
    assert cli_main.run(["--root", root, "container", "ls", "-a"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                              "PORTS", "NAMES"]
    assert out[1].startswith(c.id[:12])
    assert out[1].endswith("web")
    assert "Created" in out[1]


def test_main_container_list_alias(capsys, tmp_path):
    root = str(tmp_path / "r")
    c = _make_container(root, "web")
    assert cli_main.run(["--root", root, "container", "list", "-aq"]) == 0
    assert capsys.readouterr().out.split() == [c.id[:12]]


def test_alias_table():
    assert cli_main._alias(["container", "ls", "-a"]) == ["ps", "-a"]
    assert cli_main._alias(["image", "ls"]) == ["images"]
    assert cli_main._alias(["image", "rm", "x"]) == ["rmi", "x"]
    assert cli_main._alias(["container", "run", "busybox"]) == ["run", "busybox"]


def test_main_ps_without_root_env(monkeypatch, capsys, tmp_path):
    """SKIFF_ROOT is honoured when --root is not given."""
    root = str(tmp_path / "env")
    c = _make_container(root, "web")
    monkeypatch.setenv("SKIFF_ROOT", root)
    assert cli_main.run(["ps", "-aq"]) == 0
    assert capsys.readouterr().out.split() == [c.id[:12]]
    assert os.path.isdir(os.path.join(root, "containers", c.id))


def test_main_root_without_value(capsys):
    # docker: "flag needs an argument: --root"; not "unknown flag"
    assert cli_main.run(["--root"]) == 125
    err = capsys.readouterr().err
    assert "flag needs an argument" in err and "--root" in err
