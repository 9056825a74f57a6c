"""One shell for every command: logging set up once, and expected failures turned into one line on
stderr and an exit code a script can branch on.

    0  done
    1  the work failed (a teacher that kept failing, samples still missing): re-run to resume
    2  bad input or settings: the message names the file, the line or the option
    75 the output is in use by another run (its lock names the process): nothing was touched
    130 / 143  stopped by Ctrl-C / SIGTERM: finished work is kept, the same command resumes
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from typing import Callable, Iterator

from data_generation.common.output_lock import OutputBusy

BAD_INPUT = 2
FAILED = 1
BUSY = 75  # EX_TEMPFAIL: try again when the other run is done
SIGINT_EXIT = 130
SIGTERM_EXIT = 143

log = logging.getLogger("codecapy")


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives, so a run records where it stopped (like Ctrl-C's
    KeyboardInterrupt, and not an Exception: nothing on the way may swallow it)."""


def setup_logging(*, verbose: bool = False, rank: int = 0, world: int = 1, timestamps: bool = True) -> None:
    """INFO (DEBUG with `verbose`) on rank 0, warnings only on the other ranks; the rank in every line
    when there are several."""
    where = f" [rank {rank}/{world}]" if world > 1 else ""
    when = "%(asctime)s " if timestamps else ""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level if rank == 0 else logging.WARNING, format=f"{when}%(levelname)s{where} %(name)s: %(message)s"
    )
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # peft imports it: a "no CPU kernels" notice


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs on the main thread, SIGTERM raises Terminated instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(
    body: Callable[[], int],
    *,
    bad_input: tuple[type[BaseException], ...] = (),
    failures: tuple[type[BaseException], ...] = (),
    stopped: str = "",
) -> int:
    """Run `body`; `bad_input` exceptions exit 2, `failures` exit 1 and a busy output 75, each as one
    `error:` line.
    `stopped` (e.g. "finished steps are kept; re-run the same command to resume") turns on the SIGTERM
    handler and is said when Ctrl-C or SIGTERM stops the run (exit 130 / 143)."""
    guard = sigterm_raises() if stopped else contextlib.nullcontext()
    try:
        with guard:
            return body()
    except OutputBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BUSY
    except bad_input as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except failures as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    except (KeyboardInterrupt, Terminated) as exc:
        if not stopped:
            raise
        terminated = isinstance(exc, Terminated)
        log.error("stopped by %s (%s)", "SIGTERM" if terminated else "SIGINT", stopped)
        return SIGTERM_EXIT if terminated else SIGINT_EXIT
