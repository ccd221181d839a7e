#!/usr/bin/env python3
"""berthd's instructions per job, counted by valgrind's callgrind.

  tests/perf/instructions.py [--measure] [--jobs 200] [--workers 4]
                             [--runs 1]

berthd runs under `valgrind --tool=callgrind` (a wrapper script given to
the integration harness as BERTHD, as tests/memcheck.sh does for memcheck)
beside a private redis-server, with the no-op type NOOP (engine.so test
plugin), a fixed worker count and INFO logging: the workload of
redis_cost.py (its comment and perfcheck.py say why) with 200 jobs and 4
workers. Start-up and shutdown are left out with callgrind_control (vgdb):
the counters are zeroed once the pool has registered, then each phase ends
with a dump (which also zeroes):
  busy    2 s, API daemon (NOOP, SLEEPER), every worker running a SLEEPER,
          NOOP paused: the background rate of the submit phase;
  submit  --jobs POST /api/v1/jobs on one keep-alive connection, one request
          in flight: the API path;
  idle    2 s, drain daemon (NOOP alone), NOOP still paused: the background
          rate of the drain (worker waits, requeuer, monitor, heartbeat);
  drain   pause key deleted, until every job is Success: the worker path.
The figure of a phase is the `summary:` (all threads) of its dump, minus its
background rate times its duration, over --jobs.
Instruction counts hardly depend on the machine's speed or load: runs
agree within 0.3 %, also with three busy loops beside them on 2 cores
(~13 s a run on a quiet machine, ~18 s on a loaded one). They do depend on
the compiler, the build type and the libraries (hiredis, civetweb, cJSON,
libc): the thresholds hold for the build named in thresholds.json
("build": compiler id and build type, e.g. "GNU RelWithDebInfo", the
default build); another build is reported and not checked.

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


def under_callgrind(c, start, name):
    """Starts a daemon (start(c)) under callgrind; returns (daemon, path
    of its callgrind output)."""
    out = os.path.join(c.path, "callgrind.%s.out" % name)
    wrapper = os.path.join(c.path, "berthd-callgrind-" + name)
    harness.write(wrapper, "#!/bin/sh\nexec valgrind --tool=callgrind "
                  "--callgrind-out-file=%s --log-file=%s.log %s \"$@\"\n"
                  % (out, out, os.path.abspath(harness.BERTHD)))
    os.chmod(wrapper, 0o755)
    berthd, harness.BERTHD = harness.BERTHD, wrapper
    try:
        return start(c), out
    finally:
        harness.BERTHD = berthd


def measure(pid, out, dumps, name, fn):
    """Runs fn, then dumps; returns (Ir since the last zero or dump,
    seconds)."""
    t = time.monotonic()
    fn()
    control(pid, "--dump=" + name)
    dumps.append(name)
    return summary("%s.%d" % (out, len(dumps))), time.monotonic() - t


def one_run(n, workers):
    """Returns {phase: (Ir, seconds)}: the phases of the module's comment,
    the API daemon and the drain daemon each under callgrind."""
    c = Cluster(perfcheck.ENTRIES)
    ph = {}
    try:
        api, out = under_callgrind(
            c, lambda c: perfcheck.start_api(c, workers), "api")
        r = c.client()
        perfcheck.wait_pool(r)
        r("SET", perfcheck.pause_key(), "1")
        blockers = perfcheck.occupy_workers(api, r, workers)
        control(api.proc.pid, "--zero")
        dumps = []
        ph["busy"] = measure(api.proc.pid, out, dumps, "busy",
                             lambda: time.sleep(IDLE_SECONDS))
        ids = []

        def submit():
            sub = perfcheck.Submitter(api)
            ids.extend(sub.post(i) for i in range(n))
            sub.close()
        ph["submit"] = measure(api.proc.pid, out, dumps, "submit", submit)
        perfcheck.release_workers(api, r, blockers)
        perfcheck.stop_daemon(api)

        drainer, out = under_callgrind(
            c, lambda c: perfcheck.start_drainer(c, workers), "drain")
        perfcheck.wait_pool(r)
        perfcheck.settle_wakeups(r)
        control(drainer.proc.pid, "--zero")
        dumps = []
        ph["idle"] = measure(drainer.proc.pid, out, dumps, "idle",
                             lambda: time.sleep(IDLE_SECONDS))

        def drain():
            r("DEL", perfcheck.pause_key())
            perfcheck.wait_all_success(r, ids, timeout=120)
        ph["drain"] = measure(drainer.proc.pid, out, dumps, "drain", drain)
        r.close()
    finally:
        c.close()
    return ph


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
        row = {}
        rates = {}
        for name, bg in (("submit", "busy"), ("drain", "idle")):
            rates[bg] = ph[bg][0] / ph[bg][1]
            ir, secs = ph[name]
            row[name] = (ir - rates[bg] * secs) / n
            per[name].append(row[name])
        per["total"].append(row["submit"] + row["drain"])
        print("run %d: submit %s Ir in %.2f s (background %s Ir/s), drain "
              "%s Ir in %.2f s (background %s Ir/s); per job: submit %s, "
              "drain %s, total %s" % (
                  k + 1, perfcheck.fmt(ph["submit"][0]), ph["submit"][1],
                  perfcheck.fmt(rates["busy"]),
                  perfcheck.fmt(ph["drain"][0]), ph["drain"][1],
                  perfcheck.fmt(rates["idle"]), perfcheck.fmt(row["submit"]),
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
        note += " (spread of the runs %.2f %%)" % (
            100.0 * (max(per["total"]) - min(per["total"])) / med["total"])
    return perfcheck.check("instructions", figures, a.measure or a.update,
                           note, {"build": build_key}, write=a.update)


if __name__ == "__main__":
    sys.exit(main())
