"""A call run in a forked copy of this process, beside the caller: the loop's evaluation of iteration i runs on
the machine's other core while iteration i+1 collects and fits (`dagger.loop`).

The copy sees the process as it was at the fork (the learner's weights then), so what it returns is what the call
would have returned in the caller. It writes nothing but its result, a float64 array, to a pipe, and exits without
running the caller's exit handlers. Where forking is not safe (no fork, torch on several threads or a GPU, a view
that renders with its own GL context), the call runs in the caller at once."""
from __future__ import annotations

import os
import signal
from collections.abc import Callable

import numpy as np

from dagger.config import describe


class Beside:
    """`call()` begun in a forked copy of the process (or done now, `fork=False`); `result()` waits for it."""

    def __init__(self, call: Callable[[], np.ndarray], fork: bool = True):
        self.pid, self.value = None, None
        if not fork:
            self.value = call()
            return
        read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the copy: compute, write, leave (no exit handler, no buffered output of the caller's)
            code = 1
            try:
                os.close(read)
                try:
                    message, code = b"ok" + np.asarray(call(), dtype=np.float64).tobytes(), 0
                except BaseException as err:  # noqa: BLE001 - told to the caller in its result
                    message = b"er" + describe(err).encode()
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(message)
            finally:
                os._exit(code)
        os.close(write)
        self.read = read

    def result(self) -> np.ndarray:
        """The call's result (its error, raised here, if it failed in the copy)."""
        if self.pid is None:
            return self.value
        with os.fdopen(self.read, "rb") as pipe:
            message = pipe.read()
        os.waitpid(self.pid, 0)
        self.pid = None
        if message[:2] != b"ok":
            raise RuntimeError(f"the evaluation beside the loop failed: {message[2:].decode() or 'no result'}")
        self.value = np.frombuffer(message[2:], dtype=np.float64).copy()
        return self.value

    def cancel(self) -> None:
        """Stop the copy (the run stops): kill it and reap it."""
        if self.pid is not None:
            for step in (lambda: os.kill(self.pid, signal.SIGKILL), lambda: os.waitpid(self.pid, 0),
                         lambda: os.close(self.read)):
                try:
                    step()
                except OSError:  # it had already ended, or was reaped
                    pass
            self.pid = None
