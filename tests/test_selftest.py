"""The self-test the frozen app runs, from source: every codec family, C-ECHO, a conversion."""

import io

from cli.selftest import run_self_test


def test_self_test_passes_from_source():
    out = io.StringIO()
    assert run_self_test(out) == 0, out.getvalue()
    assert "self-test passed" in out.getvalue()
