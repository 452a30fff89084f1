"""What a benchmarked process holds: its resident memory and the size of its files."""

from __future__ import annotations

from pathlib import Path


def kib(pid: int, field: str = "VmRSS") -> int:
    """VmRSS / VmHWM (peak) of a live process, in KiB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def disk_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 if it does not exist)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
