"""The exit statuses of the ``zklock`` command, named in one place.

They follow ``flock(1)``: a command run by ``zklock exec`` passes its own status through, a
command killed by signal N gives 128 + N, a lock that could not be had gives the ``-E`` value
(default 1), and zklock's own failures use the BSD ``sysexits.h`` values.

=====  =====================  ==========================================================
code   name                   meaning
=====  =====================  ==========================================================
0      ``OK``                 success (``exec``: the command exited 0)
1      ``CONFLICT``           the lock is held: ``--no-wait`` or ``--timeout`` ran out
                              (change it with ``-E``/``--conflict-exit-code``)
64     ``USAGE``              bad command line (EX_USAGE)
69     ``UNAVAILABLE``        ZooKeeper unreachable or failing; ``server``: no backend
                              (EX_UNAVAILABLE)
70     ``SOFTWARE``           an internal error of zklock (EX_SOFTWARE)
74     ``IO_ERROR``           ``status``: its output could not be written, e.g. stdout
                              closed (EX_IOERR)
75     ``LOCK_LOST``          the lock was lost while the command ran; the command was
                              stopped (SIGTERM, then SIGKILL after ``--grace``) (EX_TEMPFAIL)
77     ``NO_PERMISSION``      ZooKeeper refused the credentials or the ACLs (EX_NOPERM)
126    ``CANNOT_EXECUTE``     the command was found but could not be run
127    ``NOT_FOUND``          the command was not found
128+N  ``SIGNAL_BASE`` + N    the command died of signal N, or zklock got signal N
                              (SIGINT, SIGTERM, SIGHUP) before the command started
=====  =====================  ==========================================================
"""

from __future__ import annotations

import enum

__all__ = ["EXIT_STATUS_HELP", "ExitCode", "signal_status"]


class ExitCode(enum.IntEnum):
    """Named exit statuses of ``zklock`` (see the module docstring for the table)."""

    OK = 0
    CONFLICT = 1
    USAGE = 64
    UNAVAILABLE = 69
    SOFTWARE = 70
    IO_ERROR = 74
    LOCK_LOST = 75
    NO_PERMISSION = 77
    CANNOT_EXECUTE = 126
    NOT_FOUND = 127
    SIGNAL_BASE = 128


def signal_status(signum: int) -> int:
    """The status for death by signal ``signum``: 128 + N, as shells report it."""
    return int(ExitCode.SIGNAL_BASE) + signum


EXIT_STATUS_HELP = """\
exit status (as flock(1)):
  the command's own status   the command ran and exited
  1 (or -E CODE)             the lock is held: --no-wait, or --timeout ran out
  64                         bad command line
  69                         ZooKeeper unreachable or failing
  70                         internal error
  75                         the lock was lost while the command ran; the command
                             was stopped (SIGTERM, then SIGKILL after --grace)
  77                         ZooKeeper refused the credentials or ACLs
  126                        the command could not be run
  127                        the command was not found
  128+N                      the command died of signal N, or zklock got signal N
                             before the command started
"""
"""The exit-status table shown by ``zklock exec --help``."""
