# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Minimal reader for the utmp login records (``/run/utmp``).

Used by ``preflight`` (logged-on users when systemd-logind does not answer) and by ``package``
(``run_as: logged_in_user`` falls back to utmp to find the interactive user).

The record layout is glibc's ``struct utmp`` on x86_64 (and i386/aarch64, which share it: 32-bit
``ut_session`` and ``ut_tv``), 384 bytes per record::

    short   ut_type;            2 (+2 padding)
    pid_t   ut_pid;             4
    char    ut_line[32];
    char    ut_id[4];
    char    ut_user[32];
    char    ut_host[256];
    short   e_termination, e_exit;
    int32_t ut_session;
    int32_t tv_sec, tv_usec;
    int32_t ut_addr_v6[4];
    char    __unused[20];

Public API:

- ``read_utmp(path=None)`` -> list of ``UtmpRecord`` (every record; ``[]`` when the file is missing)
- ``parse_utmp(data)`` -> list of ``UtmpRecord`` from raw bytes (a trailing partial record is ignored)
- ``user_sessions(path=None, alive_only=True)`` -> ``USER_PROCESS`` records with a user name,
  optionally only those whose ``pid`` still exists (stale records of crashed sessions are dropped)
- ``logged_in_users(path=None, alive_only=True)`` -> the user names of ``user_sessions``, each
  once, in file order (``[]`` when nobody is logged in or the file is missing)
- ``pack_utmp_record(...)`` -> 384 bytes, the inverse of ``parse_utmp`` (for tests and lab hosts)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import errno
import os
import socket
import struct

UTMP_PATHS = ("/run/utmp", "/var/run/utmp")

# ut_type values (utmp.h)
EMPTY = 0
RUN_LVL = 1
BOOT_TIME = 2
NEW_TIME = 3
OLD_TIME = 4
INIT_PROCESS = 5
LOGIN_PROCESS = 6
USER_PROCESS = 7
DEAD_PROCESS = 8
ACCOUNTING = 9

UTMP_FORMAT = "<hxxi32s4s32s256shhiii16s20x"
RECORD_SIZE = struct.calcsize(UTMP_FORMAT)  # 384

UtmpRecord = collections.namedtuple(
    "UtmpRecord",
    ["type", "pid", "line", "id", "user", "host", "exit_termination", "exit_status",
     "session", "tv_sec", "tv_usec", "addr"],
)
UtmpRecord.__doc__ = """One utmp record. Strings are decoded (UTF-8, undecodable bytes replaced);
``addr`` is the remote address as text (IPv4 or IPv6) or None; ``tv_sec`` is the login time
(seconds since the epoch, UTC)."""


def _cstr(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _addr(raw):
    if raw == b"\0" * 16:
        return None
    if raw[4:] == b"\0" * 12:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def parse_utmp(data):
    """Parse raw utmp bytes into a list of UtmpRecord (trailing partial record ignored)."""
    records = []
    for offset in range(0, len(data) - RECORD_SIZE + 1, RECORD_SIZE):
        (ut_type, pid, line, ut_id, user, host, e_term, e_exit, session,
         tv_sec, tv_usec, addr) = struct.unpack_from(UTMP_FORMAT, data, offset)
        records.append(UtmpRecord(
            type=ut_type, pid=pid, line=_cstr(line), id=_cstr(ut_id), user=_cstr(user),
            host=_cstr(host), exit_termination=e_term, exit_status=e_exit, session=session,
            tv_sec=tv_sec, tv_usec=tv_usec, addr=_addr(addr),
        ))
    return records


def read_utmp(path=None):
    """Read every record of ``path`` (default: /run/utmp, else /var/run/utmp).

    Returns [] when the file does not exist; other OSErrors (permission) propagate.
    """
    paths = [path] if path else list(UTMP_PATHS)
    for candidate in paths:
        try:
            with open(candidate, "rb") as f:
                return parse_utmp(f.read())
        except (IOError, OSError) as e:
            if getattr(e, "errno", None) == errno.ENOENT:
                continue
            raise
    return []


def _pid_alive(pid):
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # exists, not ours
    return True


def user_sessions(path=None, alive_only=True):
    """USER_PROCESS records with a non-empty user, in file order.

    With ``alive_only`` (default) a record whose ``pid`` no longer exists is skipped: utmp keeps
    stale USER_PROCESS entries when a session dies without logout bookkeeping.
    """
    result = []
    for rec in read_utmp(path):
        if rec.type != USER_PROCESS or not rec.user:
            continue
        if alive_only and not _pid_alive(rec.pid):
            continue
        result.append(rec)
    return result


def logged_in_users(path=None, alive_only=True):
    """User names of the live USER_PROCESS records, each once, in file order."""
    names = []
    for rec in user_sessions(path, alive_only=alive_only):
        if rec.user not in names:
            names.append(rec.user)
    return names


def _enc(value, size):
    raw = (value or "").encode("utf-8")[:size]
    return raw + b"\0" * (size - len(raw))


def pack_utmp_record(type=USER_PROCESS, pid=0, line="", id="", user="", host="",
                     exit_termination=0, exit_status=0, session=0, tv_sec=0, tv_usec=0,
                     addr=None):
    """Build one 384-byte record (the inverse of parse_utmp)."""
    if addr is None:
        raw_addr = b"\0" * 16
    elif ":" in addr:
        raw_addr = socket.inet_pton(socket.AF_INET6, addr)
    else:
        raw_addr = socket.inet_pton(socket.AF_INET, addr) + b"\0" * 12
    return struct.pack(
        UTMP_FORMAT, type, pid, _enc(line, 32), _enc(id, 4), _enc(user, 32), _enc(host, 256),
        exit_termination, exit_status, session, tv_sec, tv_usec, raw_addr,
    )
