"""Run a command and write the peak resident set of its process tree, in bytes, to a file.

    python bench/peak_rss.py OUT COMMAND [ARG ...]

Why a separate process: Linux charges a child with the memory of the process that started it. When a process is
started by `vfork` + `exec` (Python's `subprocess` uses `vfork`), the kernel copies the parent's high-water mark
into the child's `ru_maxrss` at the `exec`. A benchmark that has just generated a million rows in memory would
therefore see its own peak again in every command it measures. Started from this small process instead, the
command's `ru_maxrss` (and that of everything under it, through `wait4`) is its own.

The command's output goes straight to this process's stdout and stderr; the exit code is the command's.
"""

import os
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    out, command = sys.argv[1], sys.argv[2:]
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    with open(out, "w") as file:
        file.write(str(usage.ru_maxrss * 1024))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
