"""Is a worker process still alive? Used to tell a slow run from one whose worker vanished."""

from __future__ import annotations

import os
import sys


def pid_alive(pid: int | None) -> bool:
    """True if a process with this pid exists and is not a zombie.

    A zombie has exited but has not been waited for by its parent (the app starts detached
    workers and may never wait them); it will never heartbeat again, so it counts as dead.
    """
    if pid is None:
        return False
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    # 0 and negative numbers name process groups to os.kill, never a single worker.
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: existence and permission check only, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to another user
    except OSError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Linux: state letter 'Z' in /proc/<pid>/stat. Elsewhere (no /proc) assume not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        # /proc exists but the entry is gone: the process exited between kill() and open().
        return os.path.isdir("/proc/self")
    except OSError:
        return False
    # "pid (comm) S ...": comm may itself hold spaces and parentheses, so split at the last ')'.
    _, _, rest = stat.rpartition(b")")
    fields = rest.split()
    return bool(fields) and fields[0] == b"Z"


def _windows_pid_alive(pid: int) -> bool:
    # os.kill(pid, 0) on Windows would terminate the process, so ask the kernel instead.
    import ctypes

    process_query_limited_information = 0x1000
    still_active = 259
    error_access_denied = 5
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return kernel32.GetLastError() == error_access_denied
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)
