"""The channel.k8s.io exec protocol helpers: what goes on the error channel, and what a client
reads back from it (kubectl's decoding: v4/v5 carry a metav1.Status, older ones text)."""
from __future__ import annotations

import json

from skiff.api import remotecommand as rc


def test_offered_protocols_are_read_in_the_clients_order():
    assert rc.offered("v5.channel.k8s.io, v4.channel.k8s.io,base64.channel.k8s.io") == \
        [rc.V5, rc.V4, "base64.channel.k8s.io"]
    assert rc.offered(None) == [] and rc.offered("") == []


def test_exit_codes_round_trip_through_the_error_channel():
    for proto in (rc.V5, rc.V4):
        ok = rc.error_frame(proto, rc.exit_status(0, ["true"]))
        assert ok[0] == rc.ERROR and json.loads(ok[1:]) == {"metadata": {}, "status": "Success"}
        assert rc.exit_code_of(proto, ok[1:]) == (0, "")
        bad = rc.error_frame(proto, rc.exit_status(7, ["sh", "-c", "exit 7"]))
        st = json.loads(bad[1:])
        # the shape kubectl's v4 decoder needs: reason NonZeroExitCode, a cause of type ExitCode
        assert st["reason"] == "NonZeroExitCode"
        assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]
        assert rc.exit_code_of(proto, bad[1:])[0] == 7
        err = rc.error_frame(proto, rc.error_status('container "x" is not running', "BadRequest", 400))
        assert rc.exit_code_of(proto, err[1:]) == (1, 'container "x" is not running')
    # channel.k8s.io (v1): text; nothing on success
    assert rc.error_frame("channel.k8s.io", rc.exit_status(0, ["true"])) == bytes([rc.ERROR])
    assert rc.exit_code_of("channel.k8s.io", b"") == (0, "")
    assert rc.exit_code_of("channel.k8s.io", b"boom") == (1, "boom")
