#!/usr/bin/env python3
"""Redis cost per job: commands and round trips, submit and drain apart.

  tests/perf/redis_cost.py [--measure] [--jobs 1000] [--workers 10]

A private redis-server (tests/integration/harness.py), the no-op job type
NOOP (engine.so test plugin), 10 workers, INFO logging. Two berthds in
turn: the API daemon takes the submits, then exits; the drain daemon loads
NOOP alone (each loaded type adds to the cost of a fetch) and drains.
Phases, each framed by two INFO snapshots:
  busy    3 s, API daemon, every worker running a SLEEPER job (perfcheck.py,
          occupy_workers, says why) and NOOP paused: the background rate
          of the submit phase;
  submit  --jobs POST /api/v1/jobs on one keep-alive connection, one request
          in flight, the type paused (NS:jobs:NOOP:paused) and the workers
          busy: the API's own cost;
  idle    3 s, drain daemon, NOOP still paused: the background rate of the
          drain (worker waits on the wake-up list, requeuer, heartbeat);
  drain   the pause key deleted; until every job is Success.
Per phase: commands from INFO commandstats (Redis counts the commands a Lua
script runs under their own names, and the EVALSHA itself), and round trips
from INFO stats total_reads_processed (one read per request or pipeline the
server received). Two corrections make the figures a property of the code,
not of the machine:
  - this script's own commands (INFO, the pause key, the polling of the
    drain) are counted as they are sent and subtracted: one command, one
    read, nothing pipelined;
  - the background rate times the phase's duration is subtracted (timers
    tick whatever the load). It is tens of commands per second against
    tens of thousands per phase, so the wall clock barely shows in the
    figures; the raw counts are printed too.
Measured on 2 cores: repeated runs agree within 0.05 commands per job;
with three busy loops beside them within 0.2 (~10 s a run).
After the drain, NS:job_track:inprogress must be empty (issue 12 target 6:
a final job without a hook leaves it at once); its size is a figure.

Fails (exit 1) when a figure is above its threshold in
tests/perf/thresholds.json ("redis_cost"); --measure prints the figures and
the block to paste there (each figure + 20 %) and never fails; --update
also writes it there.
Environment (set by ctest; the defaults fit a run from the source tree):
BERTHD (build/berthd), BERTH_TEST_PLUGINS (build/tests/plugins).
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from harness import Cluster, Resp  # noqa: E402
import perfcheck  # noqa: E402

NS = harness.NS
IDLE_SECONDS = 3.0


class CountingResp(Resp):
    """The harness's RESP client, counting what it sends, by command."""

    def __init__(self, path):
        super().__init__(path)
        self.sent = {}

    def __call__(self, *args):
        name = str(args[0]).lower()
        self.sent[name] = self.sent.get(name, 0) + 1
        return super().__call__(*args)


class Snapshot:
    """Redis's counters at one instant, minus what `r` sent before."""

    def __init__(self, r):
        self.t = time.monotonic()
        mine = dict(r.sent)     # before this INFO: its read is counted in
        info = r("INFO", "all")  # the reads, its call not yet in the stats
        self.calls = {}
        self.reads = 0
        for line in info.splitlines():
            if line.startswith("cmdstat_"):
                name, rest = line[len("cmdstat_"):].split(":", 1)
                self.calls[name] = int(rest.split(",")[0].split("=")[1])
            elif line.startswith("total_reads_processed:"):
                self.reads = int(line.split(":")[1])
        # our own: every command we sent before this one, and this INFO's
        # read (its call shows from the next snapshot on, as "info")
        self.mine = mine
        self.mine_reads = sum(mine.values()) + 1

    def delta(self, later):
        """(raw commands by name, raw reads) from self to later, ours
        removed."""
        names = set(self.calls) | set(later.calls)
        out = {}
        for n in names:
            d = later.calls.get(n, 0) - self.calls.get(n, 0)
            d -= later.mine.get(n, 0) - self.mine.get(n, 0)
            if d:
                out[n] = d
        reads = (later.reads - self.reads) - (later.mine_reads -
                                              self.mine_reads)
        return out, reads, later.t - self.t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    perfcheck.add_arguments(ap)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=10)
    a = ap.parse_args()
    if a.update and (a.jobs, a.workers) != (1000, 10):
        ap.error("--update sets the thresholds of the default workload "
                 "(--jobs 1000 --workers 10): the figures depend on both")
    n = a.jobs
    c = Cluster(perfcheck.ENTRIES)
    try:
        api = perfcheck.start_api(c, a.workers)
        r = CountingResp(c.redis.sock)
        perfcheck.wait_pool(r)
        r("SET", perfcheck.pause_key(), "1")
        blockers = perfcheck.occupy_workers(api, r, a.workers)
        s0 = Snapshot(r)
        time.sleep(IDLE_SECONDS)
        s1 = Snapshot(r)
        submitter = perfcheck.Submitter(api)
        s2 = Snapshot(r)
        ids = [submitter.post(i) for i in range(n)]
        s3 = Snapshot(r)
        submitter.close()
        queued = r("LLEN", NS + ":jobs:" + perfcheck.TYPE)
        if queued != n:
            raise AssertionError("%d of %d jobs queued while paused (did "
                                 "any run?)" % (queued, n))
        perfcheck.release_workers(api, r, blockers)
        perfcheck.stop_daemon(api)

        drainer = perfcheck.start_drainer(c, a.workers)
        perfcheck.wait_pool(r)
        perfcheck.settle_wakeups(r)
        s4 = Snapshot(r)
        time.sleep(IDLE_SECONDS)
        s5 = Snapshot(r)
        r("DEL", perfcheck.pause_key())
        perfcheck.wait_all_success(r, ids, timeout=120)
        s6 = Snapshot(r)
        track = r("HLEN", NS + ":job_track:inprogress")
        log = api.log() + drainer.log()
    finally:
        c.close()

    busy_calls, busy_reads, busy_secs = s0.delta(s1)
    busy_rate = sum(busy_calls.values()) / busy_secs
    busy_read_rate = busy_reads / busy_secs
    idle_calls, idle_reads, idle_secs = s4.delta(s5)
    idle_rate = sum(idle_calls.values()) / idle_secs
    idle_read_rate = idle_reads / idle_secs
    phases = []
    for label, (x, y), rate, read_rate in (
            ("submit", (s2, s3), busy_rate, busy_read_rate),
            ("drain", (s5, s6), idle_rate, idle_read_rate)):
        calls, reads, secs = x.delta(y)
        raw = sum(calls.values())
        net = raw - rate * secs
        net_reads = reads - read_rate * secs
        phases.append((label, calls, raw, reads, secs, net, net_reads))

    print("Redis cost per job: %d NOOP jobs, %d workers, one keep-alive "
          "connection (tests/perf/redis_cost.py)" % (n, a.workers))
    print("idle rates, subtracted: during the submit (every worker busy "
          "with a SLEEPER) %.1f commands/s, %.1f round trips/s; during the "
          "drain (idle workers) %.1f commands/s, %.1f round trips/s" % (
              busy_rate, busy_read_rate, idle_rate, idle_read_rate))
    print("\nraw: all berthd sent in the phase; per job: net of the idle "
          "rate, over %d jobs" % n)
    print("%-7s %8s %12s %12s %13s %16s" % (
        "phase", "seconds", "raw commands", "raw rtrips", "commands/job",
        "round trips/job"))
    for label, calls, raw, reads, secs, net, net_reads in phases:
        print("%-7s %8.2f %12d %12d %13.2f %16.2f" % (
            label, secs, raw, reads, net / n, net_reads / n))
    print("\ncommands by name, per job (raw; evalsha counts the script, "
          "its commands count apart):")
    names = sorted(set(phases[0][1]) | set(phases[1][1]),
                   key=lambda k: -(phases[0][1].get(k, 0) +
                                   phases[1][1].get(k, 0)))
    print("%-20s %10s %10s" % ("command", "submit", "drain"))
    for k in names:
        print("%-20s %10.3f %10.3f" % (k, phases[0][1].get(k, 0) / n,
                                       phases[1][1].get(k, 0) / n))
    for label, calls, secs in (("busy", busy_calls, busy_secs),
                               ("idle", idle_calls, idle_secs)):
        print("%s workers, commands/s: %s" % (label, ", ".join(
            "%s %.1f" % (k, v / secs) for k, v in
            sorted(calls.items(), key=lambda kv: -kv[1]))))
    print("\n%s:job_track:inprogress after the drain: %d entries "
          "(issue 12 target 6: 0)" % (NS, track))
    if "ERROR" in log:
        print("berthd logged errors:\n" + "\n".join(
            l for l in log.splitlines() if "ERROR" in l)[:3000])

    sub, drn = phases
    figures = [
        ("submit_commands_per_job", round(sub[5] / n, 3), True),
        ("submit_round_trips_per_job", round(sub[6] / n, 3), True),
        ("drain_commands_per_job", round(drn[5] / n, 3), True),
        ("drain_round_trips_per_job", round(drn[6] / n, 3), True),
        ("job_track_inprogress_after_drain", track, True),
    ]
    note = ("%d NOOP jobs, %d workers: submit %.2f commands/%.2f round "
            "trips per job, drain %.2f/%.2f, job_track:inprogress %d after "
            "the drain" % (n, a.workers, sub[5] / n, sub[6] / n,
                           drn[5] / n, drn[6] / n, track))
    return perfcheck.check("redis_cost", figures, a.measure or a.update,
                           note, write=a.update)


if __name__ == "__main__":
    sys.exit(main())
