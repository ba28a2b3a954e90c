# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the package database busy? The POSIX counterpart of the Windows ``_MSIExecute`` mutex."""

from __future__ import annotations

import fcntl
import os
import struct

LOCK_FILES = {
    "deb": ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"),
    "rpm": ("/var/lib/rpm/.rpm.lock",),
}


def lock_holder(path):
    """``None`` when nobody holds a write lock on ``path``, else a description with the holder's pid.

    F_GETLK only asks the kernel; we never take the lock ourselves, so probing cannot make a
    concurrent dpkg fail.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        probe = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
        kind, _, _, _, pid = struct.unpack("hhqqi", answer)
        if kind == fcntl.F_UNLCK:
            return None
        return "%s held by pid %d" % (path, pid)
    finally:
        os.close(fd)


def package_db_busy(installer_type, lock_files=None):
    for path in lock_files or LOCK_FILES.get(installer_type, ()):
        holder = lock_holder(path)
        if holder:
            return holder
    return None
