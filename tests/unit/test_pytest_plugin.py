"""pyfuse3's pytest plugin (pyfuse3.testing.pytest_plugin), run in a separate pytest."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

NO_FUSE = """
import pyfuse3.testing.pytest_plugin as plugin
plugin._reason[:] = ["simulated: no FUSE here"]
"""

TESTS = """
import logging, os, pytest, pyfuse3

@pytest.mark.fuse
def test_needs_fuse():
    pass

def test_logs_an_error():
    logging.getLogger("pyfuse3").error("read() handler failed, answering EIO")

@pytest.mark.fuse_errors_expected
def test_logs_an_expected_error():
    logging.getLogger("pyfuse3").error("read() handler failed, answering EIO")

def test_logs_a_warning():
    logging.getLogger("pyfuse3").warning("only a warning")
"""


def test_error_log_fails_the_test_unless_marked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-k", "logs")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*the pyfuse3 logger recorded 1 error(s)*",
                                 "*ERROR read() handler failed, answering EIO*"])


def test_error_log_check_can_be_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    pytester.makeini("[pytest]\npyfuse3_fail_on_error_log = false\n")
    pytester.runpytest_subprocess("-k", "logs").assert_outcomes(passed=3)


def test_without_fuse_marked_tests_skip_or_fail_when_required(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(NO_FUSE)
    pytester.makepyfile(TESTS)
    monkeypatch.delenv("PYFUSE3_REQUIRE_FUSE", raising=False)
    result = pytester.runpytest_subprocess("-rs", "-k", "needs_fuse")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*FUSE not usable here: simulated: no FUSE here*"])
    monkeypatch.setenv("PYFUSE3_REQUIRE_FUSE", "1")
    result = pytester.runpytest_subprocess("-k", "needs_fuse")
    result.assert_outcomes(errors=1)  # fails in setup: the run fails
    result.stdout.fnmatch_lines(["*FUSE is required (PYFUSE3_REQUIRE_FUSE is set)*"])


@pytest.mark.fuse
def test_fuse_mount_fixture_mounts_under_each_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import os, stat, pyfuse3

        class Hello(pyfuse3.Operations):
            async def getattr(self, inode, ctx=None):
                a = pyfuse3.EntryAttributes()
                a.st_ino, a.st_mode = inode, stat.S_IFDIR | 0o755
                return a

            async def opendir(self, inode, ctx):
                return inode

            async def readdir(self, fh, start_id, token):
                pass

        def test_mounted(fuse_mount, pyfuse3_backend):
            fs = fuse_mount(Hello())
            assert os.listdir(fs.mountpoint) == []
            assert fs.backend == pyfuse3_backend
    """)
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_mounted?trio?*", "*test_mounted?asyncio?*",
                                 "*test_mounted?uvloop?*"])


def test_uvloop_runs_are_skipped_where_uvloop_is_missing(pytester: pytest.Pytester) -> None:
    """They failed: "backend 'uvloop' needs the uvloop package"."""
    pytester.makeconftest("""
        import sys
        sys.modules["uvloop"] = None  # as if not installed: importing it raises ImportError
    """)
    pytester.makepyfile("""
        import pyfuse3

        async def check(h):
            return h.init_reply.major

        def test_kernel_free(fuse_harness, pyfuse3_backend):
            assert fuse_harness(pyfuse3.Operations(), check) == 7
    """)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*uvloop is not installed*"])


def test_the_backend_override_of_docs_testing_md_works(pytester: pytest.Pytester) -> None:
    """The conftest.py snippet of docs/testing.md, executed as printed."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text()
    snippet = re.search(r"override the fixture in your `conftest.py`:\n\n```python\n(.*?)```",
                        doc, re.S)
    assert snippet is not None
    pytester.makeconftest(snippet.group(1))
    pytester.makepyfile("""
        def test_backend(pyfuse3_backend):
            assert pyfuse3_backend == "asyncio"
    """)
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_backend?asyncio?*"])
