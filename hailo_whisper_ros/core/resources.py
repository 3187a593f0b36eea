"""The process's memory as the kernel counts it: the one place that reads it (diagnostics and measurements), and
handing freed heap memory back to the OS after a model load."""

from __future__ import annotations

import os


def resident_mb(pid: int | None = None) -> float:
    """Resident set size of a process (this one by default), in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_resident_mb(pid: int | None = None) -> float:
    """The highest resident set size the process has had, in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def _status_kib(pid: int | None, key: str) -> int:
    with open(f"/proc/{pid or os.getpid()}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/{pid or os.getpid()}/status has no {key}")


def release_freed_memory() -> None:
    """Hand memory that is free but still mapped back to the OS: loading parses and copies model files, and without
    this the heap keeps that garbage resident (tiny.en: ~60 MB)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is reused by the process, just not returned
        pass
