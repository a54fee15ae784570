"""A call run in a forked copy of this process, beside the caller, on the machine's other core: the loop's
evaluation of iteration i while iteration i+1 collects and fits, the references during the first iteration
(`dagger.loop`), the videos (`dagger.video`) and an ensemble's first member's fit (`dagger.policy.ensemble`). The
copy has an interpreter of its own, so it never waits on the loop's (nor the loop on it).

The copy sees the process as it was at the fork (the learner's weights then), so what it returns is what the call
would have returned in the caller. It writes nothing but its result to a pipe (a video's call also writes its mp4),
exits without running the caller's exit handlers, and dies with the caller. Where forking is not safe (no fork,
torch on several threads or a GPU, a view that renders with its own GL context), the call runs in the caller at
once."""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from dagger.config import describe


class FailedBeside(RuntimeError):
    """The call failed in the copy (`reason`: its error in one line), or the copy ended without a result."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"{what} beside the loop failed: {reason}")
        self.reason = reason


def float64_bytes(value: np.ndarray) -> bytes:
    return np.asarray(value, dtype=np.float64).tobytes()


def float64_array(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.float64).copy()


class Beside:
    """`call()` begun in a forked copy of the process (or done now, `fork=False`); `result()` waits for it.
    `what` names the call in its error; the copy sends `encode(call())` (a float64 array's bytes by default), and
    `result()` gives that `decode`d."""

    def __init__(self, call: Callable[[], Any], fork: bool = True, what: str = "the evaluation",
                 encode: Callable[[Any], bytes] = float64_bytes, decode: Callable[[bytes], Any] = float64_array):
        self.pid, self.value, self.what, self.decode = None, None, what, decode
        if not fork:
            self.value = call()
            return
        read, write = os.pipe()
        caller = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the copy: compute, write, leave (no exit handler, no buffered output of the caller's)
            code = 1
            try:
                os.close(read)
                die_with(caller)
                try:
                    message, code = b"ok" + encode(call()), 0
                except BaseException as err:  # noqa: BLE001 - told to the caller in its result
                    message = b"er" + describe(err).encode()
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(message)
            finally:
                os._exit(code)
        os.close(write)
        self.read = read

    def result(self) -> Any:
        """The call's result (its error, raised here as `FailedBeside`, if it failed in the copy or was killed)."""
        if self.pid is None:
            return self.value
        with os.fdopen(self.read, "rb") as pipe:
            message = pipe.read()
        os.waitpid(self.pid, 0)
        self.pid = None
        if message[:2] != b"ok":
            raise FailedBeside(self.what, message[2:].decode() or "no result")
        self.value = self.decode(message[2:])
        return self.value

    def kill(self) -> None:
        """Stop the copy; whoever waits in `result()` reaps it (and gets `FailedBeside`)."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:  # it had already ended
                pass

    def cancel(self) -> None:
        """Stop the copy (the run stops): kill it and reap it, where nobody waits for it."""
        if self.pid is not None:
            for step in (self.kill, lambda: os.waitpid(self.pid, 0), lambda: os.close(self.read)):
                try:
                    step()
                except OSError:  # it had already ended, or was reaped
                    pass
            self.pid = None


def die_with(caller: int) -> None:
    """In the copy: end when the caller ends, even killed (Linux's parent-death signal; elsewhere the copy ends at
    its first write to the closed pipe)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != caller:  # the caller ended before the signal was asked for
        os._exit(1)
