"""Unit tests for skiff.cli.template (the subset of Go text/template used by `inspect -f`)."""

import pytest

from skiff.cli.template import go_str, render
from skiff.errors import InvalidArgument, SkiffError

OBJ = {
    "Id": "abc123",
    "Name": "/web",
    "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 4242,
              "ExitCode": 0, "Error": ""},
    "Config": {
        "Env": ["PATH=/bin", "HOSTNAME=abc"],
        "Cmd": ["sh", "-c", "echo hi"],
        "Entrypoint": None,
        "Labels": {"b": "2", "a": "1", "com.example.key": "v"},
        "Tty": False,
        "Ratio": 1.5,
        "Whole": 3.0,
    },
    "Mounts": [],
}


# -- fields ---------------------------------------------------------------------------


def test_top_level_field():
    assert render("{{.Id}}", OBJ) == "abc123"


def test_nested_fields():
    assert render("{{.State.Status}} {{.State.Pid}}", OBJ) == "running 4242"


def test_text_around_actions_kept():
    assert render("pid={{.State.Pid}};name={{.Name}}\n", OBJ) == "pid=4242;name=/web\n"


def test_whitespace_inside_action():
    assert render("{{ .State.Pid }}", OBJ) == "4242"


def test_missing_field_is_no_value():
    assert render("{{.Nope}}", OBJ) == "<no value>"
    assert render("{{.State.Nope}}", OBJ) == "<no value>"


def test_field_of_non_map_is_no_value():
    assert render("{{.Id.Foo}}", OBJ) == "<no value>"


def test_case_insensitive_fallback():
    assert render("{{.state.pid}}", OBJ) == "4242"


def test_dot_is_whole_object():
    assert render("{{.}}", {"b": 1, "a": True}) == "map[a:true b:1]"


# -- Go printing ------------------------------------------------------------------------


def test_bools_print_like_go():
    assert render("{{.State.Running}}/{{.State.Paused}}", OBJ) == "true/false"


def test_none_prints_no_value():
    assert render("{{.Config.Entrypoint}}", OBJ) == "<no value>"


def test_list_prints_like_go():
    assert render("{{.Config.Cmd}}", OBJ) == "[sh -c echo hi]"
    assert render("{{.Mounts}}", OBJ) == "[]"


def test_map_prints_sorted_like_go():
    assert render("{{.Config.Labels}}", OBJ) == "map[a:1 b:2 com.example.key:v]"


def test_empty_string_prints_empty():
    assert render("[{{.State.Error}}]", OBJ) == "[]"


def test_floats():
    assert render("{{.Config.Ratio}} {{.Config.Whole}}", OBJ) == "1.5 3"


@pytest.mark.parametrize("value,expected", [
    (None, "<no value>"),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (2.0, "2"),
    ("s", "s"),
    ([], "[]"),
    ({}, "map[]"),
    ([1, [2, 3], True], "[1 [2 3] true]"),
    ({"k": [1, 2], "a": {"x": None}}, "map[a:map[x:<no value>] k:[1 2]]"),
    ([{"a": False}], "[map[a:false]]"),
])
def test_go_str(value, expected):
    assert go_str(value) == expected


# -- functions ----------------------------------------------------------------------------


def test_json_list():
    assert render("{{json .Config.Env}}", OBJ) == '["PATH=/bin","HOSTNAME=abc"]'


def test_json_compact_map_and_scalars():
    assert render("{{json .State}}", OBJ) == (
        '{"Status":"running","Running":true,"Paused":false,"Pid":4242,"ExitCode":0,"Error":""}')
    assert render("{{json .State.Running}}", OBJ) == "true"
    assert render("{{json .Config.Entrypoint}}", OBJ) == "null"
    assert render("{{json .Nope}}", OBJ) == "null"


def test_json_whole_object():
    assert render("{{json .}}", {"a": [1]}) == '{"a":[1]}'


def test_json_does_not_escape_non_ascii():
    # docker's json function is Go's encoder (SetEscapeHTML(false)): UTF-8 is written as is
    assert render("{{json .Name}}", {"Name": "café"}) == '"café"'


def test_json_does_not_escape_html():
    assert render("{{json .X}}", {"X": "a<b>&c"}) == '"a<b>&c"'


def test_index_map_key():
    assert render('{{index .Config.Labels "com.example.key"}}', OBJ) == "v"


def test_index_list_position():
    assert render("{{index .Config.Cmd 1}}", OBJ) == "-c"
    assert render("{{index .Config.Cmd 0}}", OBJ) == "sh"


def test_index_nested_keys():
    obj = {"M": {"a": {"b": ["x", "y"]}}}
    assert render('{{index .M "a" "b" 1}}', obj) == "y"


def test_index_missing_is_no_value():
    assert render('{{index .Config.Labels "zzz"}}', OBJ) == "<no value>"
    assert render("{{index .Config.Cmd 9}}", OBJ) == "<no value>"


def test_index_key_with_spaces():
    assert render('{{index .L "a b"}}', {"L": {"a b": "ok"}}) == "ok"


def test_join():
    assert render('{{join .Config.Cmd ","}}', OBJ) == "sh,-c,echo hi"
    assert render('{{join .Config.Cmd " "}}', OBJ) == "sh -c echo hi"


def test_join_of_missing_is_empty():
    assert render('[{{join .Nope ","}}]', OBJ) == "[]"


def test_upper_lower():
    assert render("{{upper .State.Status}}", OBJ) == "RUNNING"
    assert render("{{lower .X}}", {"X": "MiXeD"}) == "mixed"
    assert render("{{upper .State.Running}}", OBJ) == "TRUE"


def test_println():
    assert render("{{println .Name}}", OBJ) == "/web\n"
    assert render("{{println .Name .State.Pid}}", OBJ) == "/web 4242\n"


def test_several_actions():
    assert render("{{.Name}} {{json .Config.Cmd}} {{upper .Id}}", OBJ) == (
        '/web ["sh","-c","echo hi"] ABC123')


# -- errors -------------------------------------------------------------------------------


def test_unknown_function():
    with pytest.raises(InvalidArgument) as ei:
        render("{{frob .Id}}", OBJ)
    assert str(ei.value) == 'template: function "frob" not defined'
    assert ei.value.exit_code == 125
    assert isinstance(ei.value, SkiffError)


def test_bad_argument_token():
    with pytest.raises(InvalidArgument) as ei:
        render("{{json Id}}", OBJ)
    assert 'unexpected "Id"' in str(ei.value)


def test_empty_action():
    with pytest.raises(InvalidArgument) as ei:
        render("{{}}", OBJ)
    assert "missing value for command" in str(ei.value)


def test_unterminated_quote():
    with pytest.raises(InvalidArgument):
        render('{{index .Config.Labels "a}}', OBJ)


# -- trim markers ---------------------------------------------------------------------------


def test_trim_markers_trim_surrounding_whitespace():
    # Go: "{{- " trims all whitespace before the action, " -}}" all whitespace after it
    assert render("a  {{- .Name -}}  \n b", OBJ) == "a/webb"
