"""Every way the process ends, ending the job right: the live clients of the process and the hooks
that end their jobs when the trainer does not call ``on_train_end``.

===========================================  =========================================================
How the process ends                          What the job gets
===========================================  =========================================================
normal interpreter exit (``sys.exit(0)``)     COMPLETED (atexit)
``sys.exit(n)``, n ≠ 0 (or a message)         FAILED "the process exited with status n ..."
an unhandled exception                        FAILED "Type: message" (chained ``sys.excepthook``)
an unhandled exception in the thread that     FAILED "Type: message (in thread NAME)" (chained
began the job                                 ``threading.excepthook``); other threads' are not the job's
KeyboardInterrupt (unhandled)                 CANCELLED "KeyboardInterrupt"
SIGTERM with no handler of the program's      CANCELLED "terminated by SIGTERM"; then the process dies of
own (the default: the signal ends it)         the signal as it would have
SIGTERM with the program's own handler        that handler decides: the job ends only when the process
(set before the job began, or set after it    does; that end is CANCELLED "... after SIGTERM"
and calling this one, as Lightning does)
SIGKILL, ``os._exit``, an OOM kill            nothing can run here: the sidecar's lease and process
                                              watching give the verdict
===========================================  =========================================================

Each waits at most the client's ``exit_flush_timeout`` (5 s; one deadline for all the clients of the
process) for what was queued and the end to be acknowledged. ``TrainingCallbacks(end_at_exit=False)``
keeps a job out of all this (it then stays RUNNING until the sidecar's verdict).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .callbacks import TrainingCallbacks

logger = logging.getLogger("training_callbacks")

#: Clients alive in this process, so that a fork can reset them and an exit can end their jobs.
live: weakref.WeakSet[TrainingCallbacks] = weakref.WeakSet()

_install_lock = threading.Lock()
_installed = False
_sigterm_installed = False
_in_sigterm = False
_previous_excepthook: Callable[..., Any] | None = None
_previous_threading_excepthook: Callable[..., Any] | None = None
_previous_sys_exit: Callable[..., Any] | None = None
_previous_sigterm: Any = None
_exit_status: Any = None  # the argument of the last sys.exit()
_signal_received: str | None = None  # a signal a program's own handler was given, e.g. "SIGTERM"


def _ours(client: TrainingCallbacks) -> bool:
    return client.end_at_exit and client.enabled and client._pid == os.getpid()


def end_all(outcome: str, error: BaseException | str | None, *, only: Callable[[TrainingCallbacks], bool] | None = None) -> None:
    """Ends every open job of the process with ``outcome``, within one shared deadline; an end already
    under way (``on_train_end`` interrupted by a signal) gets the same deadline to be delivered."""
    clients = [c for c in list(live) if _ours(c) and (only is None or only(c))]
    to_end = [c for c in clients if c._open()]
    ending = [c for c in clients if c._ending()]
    if not to_end and not ending:
        return
    deadline = time.monotonic() + max(c.exit_flush_timeout for c in to_end + ending)
    for client in to_end:
        try:
            client._end_at_exit(outcome, error, max(deadline - time.monotonic(), 0.0))
        except Exception as err:  # noqa: BLE001 - an exit path must not fail because of reporting
            logger.warning("training-callbacks: could not end job %s at exit: %s", client.job_id, err)
    for client in ending:
        client._wait_ending(max(deadline - time.monotonic(), 0.0))


def flush_all() -> None:
    """At exit, for the clients whose job is not ended there (``end_at_exit=False``): deliver what is
    queued, within their ``exit_flush_timeout``."""
    for client in list(live):
        try:
            client._flush_at_exit()
        except Exception:  # noqa: BLE001 - exit must not fail because of reporting
            pass


def signal_received() -> str | None:
    """The signal (e.g. ``"SIGTERM"``) given to the program's own handler, if any: an end after it is a
    cancellation."""
    return _signal_received


# -- the hooks ---------------------------------------------------------------------------------


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    previous = _previous_excepthook or sys.__excepthook__
    try:
        previous(exc_type, exc, tb)  # the traceback first: the user should not wait for it
    finally:
        if isinstance(exc, KeyboardInterrupt) or _signal_received:
            end_all("cancelled", _after_signal(exc))
        else:
            end_all("failed", exc)


def _threading_excepthook(args: threading.ExceptHookArgs) -> None:
    previous = _previous_threading_excepthook or threading.__excepthook__
    try:
        previous(args)
    finally:
        thread = args.thread
        ident = thread.ident if thread is not None else None
        if args.exc_value is not None and not isinstance(args.exc_value, SystemExit) and ident is not None:
            name = thread.name if thread is not None else "?"
            message = f"{args.exc_type.__name__}: {args.exc_value} (in thread {name})"
            end_all("failed", message, only=lambda c: c._began_in_thread == ident)


def _sys_exit(status: Any = None) -> None:
    global _exit_status
    _exit_status = status
    (_previous_sys_exit or _original_exit)(status)


def _original_exit(status: Any = None) -> None:  # pragma: no cover - only if sys.exit was None
    raise SystemExit(status)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    global _signal_received, _in_sigterm
    previous = _previous_sigterm
    if previous == signal.SIG_IGN or _in_sigterm:
        return  # the program ignores SIGTERM (the process goes on, and so does the job), or a loop
    if callable(previous):
        # The program's own handler decides whether the process ends (it may raise, exit or carry on);
        # if it does end, that end is a cancellation by this signal.
        _signal_received = signal.Signals(signum).name
        _in_sigterm = True  # a framework that composes handlers may call this one back
        try:
            previous(signum, frame)
        finally:
            _in_sigterm = False
        return
    if signal.getsignal(signum) is not _sigterm:
        # A handler installed over this one calls it (Lightning composes the handlers it finds): that
        # handler decides whether the process ends; an end that follows is a cancellation.
        _signal_received = signal.Signals(signum).name
        return
    # SIG_DFL (or a handler set outside Python): the signal ends the process. End the jobs, then die
    # of the signal exactly as without this handler.
    end_all("cancelled", f"terminated by {signal.Signals(signum).name}")
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _after_signal(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"{text} (after {_signal_received})" if _signal_received else text


@atexit.register
def _at_exit() -> None:
    """Normal interpreter exit (also after ``sys.exit``): ends the jobs nobody ended, then delivers
    what the others queued."""
    status = _exit_status
    try:
        if _signal_received:
            end_all("cancelled", f"the process exited after {_signal_received} without on_train_end")
        elif status is None or status == 0:
            end_all("completed", None)
        else:
            end_all("failed", f"the process exited with status {status} (sys.exit) without on_train_end")
    finally:
        flush_all()


def _after_fork_in_child() -> None:
    for client in list(live):
        client._ready = False  # the next call rebuilds the queue, the thread and the channel
        client._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def install() -> None:
    """Installs the hooks in this process, once (a forked child inherits them). The SIGTERM handler
    is installed from the main thread only (Python allows no other), once: a handler the program sets
    later replaces it or calls it, as that program decides."""
    global _installed, _sigterm_installed, _previous_excepthook, _previous_threading_excepthook
    global _previous_sys_exit, _previous_sigterm
    with _install_lock:
        if not _installed:
            _installed = True
            _previous_excepthook = sys.excepthook
            sys.excepthook = _excepthook
            _previous_threading_excepthook = threading.excepthook
            threading.excepthook = _threading_excepthook
            # The exit status is known nowhere else at exit (atexit gets no argument); as W&B does.
            _previous_sys_exit = sys.exit
            sys.exit = _sys_exit
        if not _sigterm_installed and threading.current_thread() is threading.main_thread():
            try:
                _previous_sigterm = signal.signal(signal.SIGTERM, _sigterm)
                _sigterm_installed = True
            except (ValueError, OSError) as err:  # not the main interpreter, or no signals here
                logger.debug("training-callbacks: no SIGTERM handler: %s", err)
