"""infscale.script.start_script: what every workflow script starts with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
from infscale.errors import InputError
from infscale.script import start_script

start_script({log!r})
print("started")
raise {error}("config key eval.tasks: unknown eval task 'jeopardy';\\n  supported: arc_easy")
"""


@pytest.mark.parametrize("error", ["InputError", "RuntimeError"])
def test_bad_input_ends_a_script_with_one_line_in_its_log(tmp_path: Path, error: str) -> None:
    log = tmp_path / "logs" / "step.log"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(log=str(log), error=error)],
        capture_output=True,
        text=True,
    )
    assert proc.stdout == proc.stderr == ""  # everything went to the log
    text = log.read_text()
    assert text.startswith("started\n")
    if error == "InputError":
        assert proc.returncode == 2
        assert text.splitlines()[1:] == [
            "infscale: error: config key eval.tasks: unknown eval task 'jeopardy'; "
            "supported: arc_easy"
        ]
    else:  # a bug keeps its traceback
        assert proc.returncode == 1
        assert "Traceback" in text and "RuntimeError" in text
