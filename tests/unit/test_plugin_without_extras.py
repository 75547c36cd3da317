"""zklock installed without [testing]: its pytest11 entry point must not break a user's suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_project_suite_runs_when_docker_and_testcontainers_are_missing(tmp_path):
    (tmp_path / "test_app.py").write_text("def test_app():\n    assert 1 + 1 == 2\n")
    runner = textwrap.dedent(
        """
        import sys
        sys.modules["docker"] = None  # as if not installed: importing it fails
        sys.modules["testcontainers"] = None
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", sys.argv[1]]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, str(tmp_path / "test_app.py")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
