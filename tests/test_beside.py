"""A call run in a forked copy of the process (dagger.beside): its result, its error, and stopping it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dagger.beside import Beside, FailedBeside


def test_the_copy_returns_what_the_call_returns_in_the_caller():
    weights = np.arange(4.0)
    beside = Beside(lambda: weights * 2)
    weights[:] = 0  # the caller goes on changing its state: the copy saw it as it was at the fork
    np.testing.assert_array_equal(beside.result(), [0.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(Beside(lambda: np.arange(3.0), fork=False).result(), [0.0, 1.0, 2.0])


def test_an_error_in_the_copy_is_raised_in_the_caller_in_one_line():
    with pytest.raises(FailedBeside, match="evaluation beside the loop failed: ZeroDivisionError"):
        Beside(lambda: 1 / 0).result()


def test_cancel_kills_and_reaps_the_copy():
    beside = Beside(lambda: (time.sleep(30), np.zeros(1))[1])
    pid = beside.pid
    started = time.perf_counter()
    beside.cancel()
    assert time.perf_counter() - started < 5
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(pid, os.WNOHANG)
    beside.cancel()  # a second stop does nothing


def test_the_copy_dies_with_its_caller_even_killed(tmp_path):
    """A run killed outright (SIGKILL, out of memory) leaves no copy rendering or evaluating behind it."""
    script = ("import os, signal, time, numpy as np\n"
              "from dagger.beside import Beside\n"
              "beside = Beside(lambda: (time.sleep(60), np.zeros(1))[1])\n"
              "print(beside.pid, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    caller = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert caller.returncode == -signal.SIGKILL
    pid = int(caller.stdout)
    deadline = time.time() + 10
    while alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def alive(pid: int) -> bool:
    """A process that runs (a zombie, ended but not yet reaped by init, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
