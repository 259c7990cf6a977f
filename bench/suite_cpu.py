"""Where the test suite's CPU goes: run a command (by default `make test`) and add up the CPU of
every process on the machine by kind while it runs (issue 12).

    .venv/bin/python bench/suite_cpu.py [--every 0.5] [-- COMMAND ...]

On two cores `make test` is bound by CPU, not by waiting: its wall time can go no lower than its
core-seconds divided by two. This says how many core-seconds there are and who spends them: each
test Neo4j server (by home: the workers' shared servers, the spare and TLS homes), neo4j-admin
and launcher JVMs, pytest and its workers, served `graphflags` processes, the browser. It reads
/proc every `--every` seconds, so a process that lives less than that is missed and one that
exits loses its last slice (the JVMs and the workers live far longer). Run it on a quiet machine:
everything running is counted, other people's work as "other".
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import threading
import time

from harness import cpu_seconds  # one /proc reader for every benchmark


def kind(cmdline: str) -> str:
    if "java" in cmdline:
        if "CommunityEntryPoint" in cmdline:
            home = re.search(r"--home-dir=\S*?/((?:popen-gw\d+/)?[^/\s]+)(?:\s|$)", cmdline)
            return f"neo4j server ({home.group(1) if home else '?'})"
        if "Neo4jAdminCommand" in cmdline or "AdminTool" in cmdline:
            return "neo4j-admin"
        return "java (launchers)"
    if "chrom" in cmdline:
        return "chromium"
    if "pytest" in cmdline or "exec(eval(sys.stdin.readline()))" in cmdline:  # xdist workers
        return "pytest"
    if "graphflags" in cmdline or "uvicorn" in cmdline:
        return "served graphflags"
    if "mypy" in cmdline or "ruff" in cmdline:
        return "lint"
    if "python" in cmdline:
        return "python (other)"
    return "other"


class Sampler:
    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self._last: dict[int, float] = {}
        self._kinds: dict[int, str] = {}
        self._first = True

    def sample(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            pid = int(entry)
            if pid not in self._kinds:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as raw:
                        self._kinds[pid] = kind(raw.read().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:  # gone already
                    continue
            used = cpu_seconds([pid])
            # What a process had spent before the first sample is not the command's; one that
            # exited since it was listed reads 0 (its last slice is lost, as the docstring says).
            before = self._last.get(pid, used if self._first else 0.0)
            self.seconds[self._kinds[pid]] += max(0.0, used - before)
            self._last[pid] = max(used, before)
        self._first = False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("command", nargs="*", default=["make", "test"])
    args = parser.parse_args()

    sampler, done = Sampler(), threading.Event()
    sampler.sample()

    def keep_sampling() -> None:
        while not done.wait(args.every):
            sampler.sample()

    thread = threading.Thread(target=keep_sampling, daemon=True)
    started = time.monotonic()
    thread.start()
    returncode = subprocess.call(args.command)
    wall = time.monotonic() - started
    done.set()
    thread.join()
    sampler.sample()

    total = sum(sampler.seconds.values())
    cores = os.cpu_count() or 1
    print(f"\n{' '.join(args.command)}: exit {returncode}, {wall:.0f} s wall")
    print(f"CPU: {total:.0f} core-seconds, {100 * total / wall / cores:.0f}% of {cores} cores")
    for name, seconds in sampler.seconds.most_common():
        if seconds >= 1:
            print(f"  {seconds:7.1f} s  {name}")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
