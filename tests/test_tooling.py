"""The contributors' tooling is wired to our paths: every pre-commit hook's `files` pattern matches files
of this repository (a pattern that matches nothing checks nothing), and CI runs the same checks."""

from __future__ import annotations

import re
import subprocess

import pytest

from helpers.process import PROJECT_ROOT

CONFIG = PROJECT_ROOT / ".pre-commit-config.yaml"


def hooks() -> list[dict[str, str]]:
    """Each hook's `id`, `entry` and `files` (the config is flat enough to read without a YAML parser)."""
    found: list[dict[str, str]] = []
    for line in CONFIG.read_text().splitlines():
        m = re.match(r"\s*(-\s+)?(id|entry|files):\s*(.+?)\s*$", line)
        if m is None:
            continue
        if m.group(2) == "id":
            found.append({})
        found[-1][m.group(2)] = m.group(3)
    return found


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return out.stdout.splitlines()


def test_every_hook_matches_files_of_ours() -> None:
    files = tracked_files()
    found = hooks()
    assert {h["id"] for h in found} == {"ruff-format", "ruff-check", "mypy-core"}
    for hook in found:
        assert "files" in hook, f"{hook['id']} has no files pattern"
        pattern = re.compile(hook["files"])
        matched = [f for f in files if pattern.search(f)]
        assert matched, f"{hook['id']}: files {hook['files']!r} matches nothing here"
        if hook["id"].startswith("ruff"):
            assert {"core", "tests", "main.py"} <= {f.split("/")[0] for f in matched}, hook
        else:
            assert all(f.startswith("core/") or f == "pyproject.toml" for f in matched), hook


def test_ci_runs_the_hooks_checks_before_the_tests() -> None:
    run = (PROJECT_ROOT / ".ci" / "run").read_text()
    steps = [".venv/bin/ruff format --check .", ".venv/bin/ruff check .", ".venv/bin/mypy core", "bash test.sh -q"]
    at = [run.find(s) for s in steps]
    assert all(i >= 0 for i in at) and at == sorted(at), dict(zip(steps, at, strict=True))
