"""A call run in a forked copy of the process (dagger.beside): its result, its error, and stopping it."""
import os
import time

import numpy as np
import pytest

from dagger.beside import Beside


def test_the_copy_returns_what_the_call_returns_in_the_caller():
    weights = np.arange(4.0)
    beside = Beside(lambda: weights * 2)
    weights[:] = 0  # the caller goes on changing its state: the copy saw it as it was at the fork
    np.testing.assert_array_equal(beside.result(), [0.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(Beside(lambda: np.arange(3.0), fork=False).result(), [0.0, 1.0, 2.0])


def test_an_error_in_the_copy_is_raised_in_the_caller_in_one_line():
    with pytest.raises(RuntimeError, match="evaluation beside the loop failed: ZeroDivisionError"):
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
