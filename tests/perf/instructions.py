#!/usr/bin/env python3
"""berthd's instructions per job, counted by valgrind's callgrind.

  tests/perf/instructions.py [--measure] [--jobs 200] [--workers 4]
                             [--runs 1]

berthd runs under `valgrind --tool=callgrind` (a wrapper script given to
the integration harness as BERTHD, as tests/memcheck.sh does for memcheck)
beside a private redis-server, with the no-op type NOOP (engine.so test
plugin), a fixed worker count and INFO logging. Start-up and shutdown are
left out with callgrind_control (vgdb): the counters are zeroed once the
pool has registered, then each phase ends with a dump (which also zeroes):
  idle    2 s with nothing queued: the background rate (worker waits,
          requeuer, monitor, heartbeat);
  submit  --jobs POST /api/v1/jobs on one keep-alive connection, one request
          in flight, type paused (NS:jobs:NOOP:paused): the API path, plus
          the wake-up each submit gives an idle worker;
  drain   pause key deleted, until every job is Success: the worker path.
The figure of a phase is the `summary:` (all threads) of its dump, minus the
idle rate times the phase's duration (~0.2 M Ir/s, under 1 % of a phase),
over --jobs.
Instruction counts hardly depend on the machine's speed or load: three runs
of 200 jobs differ by about 0.3 %; with two busy loops beside them the
submit figure grew 1-2 % (a worker woken by a submit fetches again after
10 and 100 ms when no other submit woke it, and a slower submitter leaves
more such gaps). They do depend on the compiler, the
build type and the libraries (hiredis, civetweb, cJSON, libc): the
thresholds hold for the build named in thresholds.json ("build": compiler
id and build type, e.g. "GNU RelWithDebInfo", the default build); another
build is reported and not checked.

Fails (exit 1) when a figure is above its threshold in
tests/perf/thresholds.json ("instructions"); --measure prints the figures
and the block to paste there (each figure + 20 %) and never fails; --update
also writes it there (re-set after a deliberate change: --update --runs 3).
Exits 77 (ctest: skipped) without valgrind. --runs N repeats the
measurement and reports the spread; the check uses the median.
Environment (set by ctest; the defaults fit a run from the source tree):
BERTHD (build/berthd), BERTH_TEST_PLUGINS (build/tests/plugins),
BERTH_PERF_BUILD (compiler id, version and build type, e.g. "GNU 12.2.0
RelWithDebInfo"; default: read from the CMake files of BERTHD's build).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import Cluster  # noqa: E402
import perfcheck  # noqa: E402

IDLE_SECONDS = 2.0


def tool(name):
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def build_of(berthd):
    """"<compiler id> <version> <build type>" of the build tree holding
    berthd, read from its CMake files (when not run by ctest)."""
    tree = os.path.dirname(os.path.abspath(berthd))
    found = {}
    try:
        with open(os.path.join(tree, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    found["type"] = line.split("=", 1)[1].strip()
        files = os.path.join(tree, "CMakeFiles")
        for v in sorted(os.listdir(files)):
            p = os.path.join(files, v, "CMakeCCompiler.cmake")
            if os.path.exists(p):
                with open(p) as f:
                    for line in f:
                        for k in ("ID", "VERSION"):
                            pre = "set(CMAKE_C_COMPILER_%s " % k
                            if line.startswith(pre):
                                found[k] = line[len(pre):].strip(' ")\n')
    except OSError:
        pass
    return " ".join(found.get(k, "?") for k in ("ID", "VERSION", "type"))


def control(pid, *args):
    """callgrind_control on berthd (through vgdb)."""
    p = subprocess.run(["callgrind_control"] + list(args) + [str(pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError("callgrind_control %s: %s" % (
            " ".join(args), p.stdout.decode(errors="replace")))


def summary(path, timeout=30):
    """Ir of a callgrind dump (its `summary:` line), waiting for the file
    to be complete."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("summary:"):
                        return int(line.split()[1])
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("no summary in %s" % path)


def one_run(n, workers):
    """Returns {phase: (Ir, seconds)} of one berthd under callgrind."""
    c = Cluster(perfcheck.ENTRIES, config=perfcheck.config(workers))
    out = os.path.join(c.path, "callgrind.out")
    wrapper = os.path.join(c.path, "berthd-callgrind")
    harness.write(wrapper, "#!/bin/sh\nexec valgrind --tool=callgrind "
                  "--callgrind-out-file=%s --log-file=%s.log %s \"$@\"\n"
                  % (out, out, os.path.abspath(harness.BERTHD)))
    os.chmod(wrapper, 0o755)
    berthd, harness.BERTHD = harness.BERTHD, wrapper
    try:
        d = c.start()
        harness.BERTHD = berthd
        pid = d.proc.pid
        r = c.client()
        perfcheck.wait_pool(r)
        time.sleep(1.5)   # the first recovery pass runs 1 s after start
        r("SET", perfcheck.pause_key(), "1")
        phases = {}
        control(pid, "--zero")
        t = time.monotonic()
        time.sleep(IDLE_SECONDS)
        control(pid, "--dump=idle")
        phases["idle"] = (summary(out + ".1"), time.monotonic() - t)

        sub = perfcheck.Submitter(d)
        t = time.monotonic()
        ids = [sub.post(i) for i in range(n)]
        sub.close()
        perfcheck.settle_wakeups(r)
        control(pid, "--dump=submit")
        phases["submit"] = (summary(out + ".2"), time.monotonic() - t)

        t = time.monotonic()
        r("DEL", perfcheck.pause_key())
        perfcheck.wait_all_success(r, ids, timeout=120)
        control(pid, "--dump=drain")
        phases["drain"] = (summary(out + ".3"), time.monotonic() - t)
        r.close()
    finally:
        harness.BERTHD = berthd
        c.close()
    return phases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    perfcheck.add_arguments(ap)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()
    if a.update and (a.jobs, a.workers) != (200, 4):
        ap.error("--update sets the thresholds of the default workload "
                 "(--jobs 200 --workers 4): the figures depend on both")
    for t in ("valgrind", "callgrind_control"):
        if not tool(t):
            print("SKIPPED: %s not found (Debian package valgrind)" % t)
            return perfcheck.SKIP
    n = a.jobs
    build = (os.environ.get("BERTH_PERF_BUILD") or
             build_of(harness.BERTHD)).split()
    build_key = " ".join(build[:1] + build[2:])   # without the version
    print("berthd instructions per job under callgrind: %d NOOP jobs, %d "
          "workers, one keep-alive connection, build: %s "
          "(tests/perf/instructions.py)" % (n, a.workers,
                                            " ".join(build) or "unknown"))
    per = {"submit": [], "drain": [], "total": []}
    t0 = time.monotonic()
    for k in range(a.runs):
        ph = one_run(n, a.workers)
        idle_ir, idle_s = ph["idle"]
        rate = idle_ir / idle_s
        row = {}
        for name in ("submit", "drain"):
            ir, secs = ph[name]
            row[name] = (ir - rate * secs) / n
            per[name].append(row[name])
        per["total"].append(row["submit"] + row["drain"])
        print("run %d: idle %s Ir/s; submit %s Ir in %.2f s; drain %s Ir in "
              "%.2f s; per job: submit %s, drain %s, total %s" % (
                  k + 1, perfcheck.fmt(rate), perfcheck.fmt(ph["submit"][0]),
                  ph["submit"][1], perfcheck.fmt(ph["drain"][0]),
                  ph["drain"][1], perfcheck.fmt(row["submit"]),
                  perfcheck.fmt(row["drain"]),
                  perfcheck.fmt(per["total"][-1])))
    med = {k: statistics.median(v) for k, v in per.items()}
    if a.runs > 1:
        for k, v in per.items():
            print("%-6s Ir/job over %d runs: median %s, min %s, max %s, "
                  "spread %.2f %%" % (k, a.runs, perfcheck.fmt(med[k]),
                                      perfcheck.fmt(min(v)),
                                      perfcheck.fmt(max(v)),
                                      100.0 * (max(v) - min(v)) / med[k]))
    print("(%.0f s)" % (time.monotonic() - t0))
    want = perfcheck.load("instructions").get("build")
    checked = a.measure or a.update or build_key == want
    if not checked:
        print("build %r: the thresholds are for %r; reported, not checked"
              % (build_key, want))
    figures = [
        ("submit_ir_per_job", round(med["submit"]), checked),
        ("drain_ir_per_job", round(med["drain"]), checked),
        ("total_ir_per_job", round(med["total"]), checked),
    ]
    note = ("%d NOOP jobs, %d workers, %s build, %d run(s): Ir per job "
            "submit %d, drain %d, total %d" % (
                n, a.workers, " ".join(build) or "unknown", a.runs,
                round(med["submit"]), round(med["drain"]),
                round(med["total"])))
    if a.runs > 1:
        note += " (spread of the runs %.1f %%)" % (
            100.0 * (max(per["total"]) - min(per["total"])) / med["total"])
    return perfcheck.check("instructions", figures, a.measure or a.update,
                           note, {"build": build_key}, write=a.update)


if __name__ == "__main__":
    sys.exit(main())
