#!/usr/bin/env python3
"""Berth's benchmark suite (issue 12): one command, markdown tables.

  tests/bench/suite.py [--build build] [--only SECTIONS] [--jobs 20000]
                       [--backlog 1000000] [--gate jobs|pause] [--peers]

Starts its own redis-server (a free loopback port, no persistence; the
harness's RedisServer), then for every section a fresh berthd from the
build tree (the record plugin, tests/bench/record.c, as job type BENCH; see
tests/bench/peer.py for the daemon's configuration) with FLUSHALL between
sections, and prints the tables below.

While jobs are enqueued no worker may fetch. The suite's default gate is
`--gate jobs`: every worker is held in a gate job that touches no Redis,
so the enqueue figures count the submits alone. `--gate pause` uses the
pause key instead (peer.py's default, as in the harness runs): the workers
then keep waking up for the submits and probing the paused queue, and
those commands land in the enqueue figures (+5 commands and +2 round
trips per single submit on the engine this suite was first run against).

  workers  throughput vs workers (--workers-list 1,4,10,50): the peers
           protocol's enqueue and drain phases on --jobs jobs; enqueue and
           process rates, Redis commands and round trips (reads) per job,
           Redis CPU per job, berthd's peak RSS.
  types    the same with 1/17/100 job types loaded (--types-list; the
           extra types BENCH_X.. are further manifest entries of the same
           record.so and get no jobs), 10 workers.
  latency  10 workers: the protocol run, then an open-loop --steady-rate
           for --steady-secs (p=2, warm), then --idle-secs of idle (Redis
           commands/s of the idle daemon), then a burst: --burst-jobs more
           at --steady-rate right after that idle (p50/p99/max and the
           first job's latency). Also Redis bytes per pending job (queued,
           gated) and per finished job (used_memory deltas of the protocol
           run) and berthd's RSS, idle, after all that.
  batch    submit rates on one keep-alive connection, one request in
           flight: POST /api/v1/jobs against POST /api/v1/jobs/batch with
           --batch-sizes jobs per request (--jobs jobs each), with Redis
           commands and round trips per job. Skipped with a message when
           the route is missing.
  backlog  --backlog jobs enqueued through the batch route (1000 per
           request) while gated, then drained by 10 workers: throughput per
           10 % slice, berthd's peak RSS, Redis used_memory before the
           enqueue, with the backlog queued, after the drain and after
           --idle-secs more (idle commands/s after a backlog too).
           --backlog-submit single uses POST /api/v1/jobs instead.
  rss      berthd's RSS and PSS, idle, with 10 workers and every bundled
           plugin of etc/plugins.yml loaded (no BENCH).
  peers    (only with --peers, or named in --only) runs the peers
           harness's run_all.sh with PEERS="bullmq bee-queue sidekiq berth"
           (Berth = tests/bench/peer.py on this build, with the suite's
           --gate), N=--peers-jobs,
           REPEAT from the environment, when the peers are installed
           (<peers dir>/node/node_modules and Ruby's sidekiq); prints the
           same-run figures and Berth's ratios per rep. The peers dir is
           --peers-dir, else $BENCH_PEERS_DIR, else ../shared/bench-peers
           next to the repository.

Sections run in that order; --only takes a comma list of their names.
Progress goes to stderr, the tables to stdout; every raw result is kept in
--out (default: a new temporary directory, printed at the end) as
suite.json. Quick look: --only workers,types --jobs 5000.

Notes: everything shares the machine with Redis; compare figures within one
run. Commands per job are INFO commandstats deltas (commands run inside Lua
count), round trips are total_reads_processed deltas (a pipeline is one
read). t_done of a job is taken at the end of its run(), before berthd
writes its final status (see peer.py).
"""
import argparse
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import peer  # noqa: E402
from peer import (Bench, BatchRouteMissing, Daemon, RedisAddr,  # noqa: E402
                  enqueue, latency, now_ms, open_loop, run_protocol,
                  tree_memory)
from harness import RedisServer  # noqa: E402  (peer.py put it on sys.path)

SECTIONS = ("workers", "types", "latency", "batch", "backlog", "rss", "peers")
PEER_NAMES = ("bullmq", "bee-queue", "sidekiq")


def say(msg):
    sys.stderr.write("suite: %s\n" % msg)
    sys.stderr.flush()


def fmt(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return ("{:,.%df}" % nd).format(x)


def table(title, headers, rows):
    out = ["", "#### " + title, "",
           "| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if k == 0 else "---:"
                          for k in range(len(headers))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(fmt(c) if not isinstance(c, str) else c
                                     for c in r) + " |")
    print("\n".join(out))
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def top_cmds(by, n=5, per=None):
    items = list(by.items())[:n]
    if per:
        return ", ".join("%s %.1f" % (k, v / per) for k, v in items)
    return ", ".join("%s %d" % kv for kv in items)


class Suite:
    def __init__(self, a):
        self.a = a
        self.build = os.path.abspath(a.build)
        self.out = os.path.abspath(a.out or tempfile.mkdtemp(
            prefix="berth-suite-"))
        os.makedirs(self.out, exist_ok=True)
        self.results = {}
        self.redis = None
        self.addr = None

    # --- plumbing -------------------------------------------------------

    def start_redis(self):
        port = free_port()
        self.redis = RedisServer(os.path.join(self.out, "redis-tmp"),
                                 extra=["--port", str(port), "--bind",
                                        "127.0.0.1"]).start()
        self.addr = RedisAddr("127.0.0.1", port)
        r = self.addr.client()
        self.redis_version = next(
            (l.split(":", 1)[1] for l in r("INFO", "server").splitlines()
             if l.startswith("redis_version:")), "?")
        r.close()
        say("redis-server %s on 127.0.0.1:%d" % (self.redis_version, port))

    def flush(self):
        r = self.addr.client()
        r("FLUSHALL")
        r.close()

    def cfg(self, n, workers, steady_secs=0.0, adapt=True):
        return dict(N=n, C=workers, rate=float(self.a.steady_rate),
                    secs=steady_secs, adapt=adapt, max_util=0.5,
                    idle_secs=1.0, out_dir="",
                    timeout=max(300.0, n / 200.0))

    def case_dir(self, name):
        d = os.path.join(self.out, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def protocol(self, name, n, workers, **kw):
        steady = kw.pop("steady_secs", 0.0)
        adapt = kw.pop("adapt", True)
        c = self.cfg(n, workers, steady, adapt)
        c["out_dir"] = self.case_dir(name)
        self.flush()
        say("%s: %d jobs, %d workers%s" % (
            name, n, workers, "".join(", %s %s" % kv for kv in kw.items()
                                      if kv[0] != "after")))
        res = run_protocol(self.build, self.addr, c, gate=self.a.gate, **kw)
        self.results[name] = res
        return res

    # --- sections --------------------------------------------------------

    def workers(self):
        rows = []
        for w in self.a.workers_list:
            r = self.protocol("workers-%d" % w, self.a.jobs, w)
            e, d = r["phases"]["enqueue"], r["phases"]["drain"]
            rows.append([str(w), r["enqueue_rate"], r["process_rate"],
                         r["drain_wall_rate"], fmt(d["cmds_per_job"], 2),
                         fmt(d["reads_per_job"], 2),
                         fmt(e["cmds_per_job"], 2),
                         fmt(e["reads_per_job"], 2),
                         fmt(d["redis_cpu_us_per_job"]),
                         fmt(r["worker_peak_rss_mib"], 1),
                         fmt(r["worker_cpu_s"] * 1000.0 / r["N"], 3)])
        table("Throughput vs workers (%s jobs, 1 job type)" %
              fmt(self.a.jobs),
              ["workers", "enqueue jobs/s", "process jobs/s",
               "drain from release jobs/s", "drain cmds/job",
               "drain round trips/job", "enqueue cmds/job",
               "enqueue round trips/job", "Redis CPU µs/job (drain)",
               "berthd peak RSS MiB", "berthd CPU ms/job"], rows)

    def types(self):
        rows = []
        for t in self.a.types_list:
            r = self.protocol("types-%d" % t, self.a.jobs, 10, types=t)
            e, d = r["phases"]["enqueue"], r["phases"]["drain"]
            rows.append([str(t), r["process_rate"], r["enqueue_rate"],
                         fmt(d["cmds_per_job"], 2),
                         fmt(d["reads_per_job"], 2),
                         fmt(e["cmds_per_job"] + d["cmds_per_job"], 2),
                         fmt(e["reads_per_job"] + d["reads_per_job"], 2),
                         fmt(d["redis_cpu_us_per_job"]),
                         top_cmds(d["by_cmd"], 4, r["N"])])
        table("Throughput vs job types loaded (%s jobs of one type, 10 "
              "workers)" % fmt(self.a.jobs),
              ["types", "process jobs/s", "enqueue jobs/s", "drain cmds/job",
               "drain round trips/job", "enqueue+drain cmds/job",
               "enqueue+drain round trips/job", "Redis CPU µs/job (drain)",
               "top drain cmds/job"], rows)

    def latency(self):
        a = self.a
        extra = {}

        def after(b, res):
            st = b.stats
            st.snap("idle_a")
            time.sleep(a.idle_secs)
            st.snap("idle_b")
            b.sampler.sample()
            extra["rss_idle_kib"] = b.sampler.last_rss
            extra["idle"] = st.delta("idle_a", "idle_b", 0)
            offered = open_loop(b.http, a.steady_rate, a.burst_jobs, 3)
            ok = b.records.wait_for(3, a.burst_jobs, 120)
            st.snap("burst_end")
            rows = b.records.get(3)
            first = min(rows, key=lambda r: r[0]) if rows else None
            extra["burst"] = dict(
                jobs=a.burst_jobs, complete=ok, offered_rate=offered,
                first_ms=round(first[3] - first[1], 3) if first else None,
                **latency(rows))
            extra["burst_phase"] = st.delta("idle_b", "burst_end",
                                            a.burst_jobs)

        r = self.protocol("latency", a.jobs, 10, steady_secs=a.steady_secs,
                          adapt=False, after=after)
        r["after"] = extra
        s, bu = r["steady"], extra["burst"]
        table("Latency, submit to completion (10 workers, open loop, one "
              "connection)",
              ["phase", "rate jobs/s", "jobs", "p50 ms", "p90 ms", "p99 ms",
               "max ms", "cmds/job", "round trips/job"],
              [["steady, warm", fmt(s["offered_rate"]), fmt(s["jobs"]),
                fmt(s.get("p50_ms"), 2), fmt(s.get("p90_ms"), 2),
                fmt(s.get("p99_ms"), 2), fmt(s.get("max_ms"), 2),
                fmt(r["phases"]["steady"]["cmds_per_job"], 2),
                fmt(r["phases"]["steady"]["reads_per_job"], 2)],
               ["burst after %g s idle (first job %s ms)" %
                (a.idle_secs, fmt(bu["first_ms"], 2)),
                fmt(bu["offered_rate"]), fmt(bu["jobs"]),
                fmt(bu.get("p50_ms"), 2), fmt(bu.get("p90_ms"), 2),
                fmt(bu.get("p99_ms"), 2), fmt(bu.get("max_ms"), 2),
                fmt(extra["burst_phase"]["cmds_per_job"], 2),
                fmt(extra["burst_phase"]["reads_per_job"], 2)]])
        idle, idle1 = extra["idle"], r["phases"]["idle"]
        self.idle_rows = [
            ["1 s right after the drain (protocol idle phase)",
             fmt(idle1["secs"], 1), fmt(idle1["cmds_per_s"], 1),
             top_cmds(idle1["by_cmd"])],
            ["%g s after the steady phase" % a.idle_secs,
             fmt(idle["secs"], 1), fmt(idle["cmds_per_s"], 1),
             top_cmds(idle["by_cmd"])]]
        mem = r["redis_used_memory_bytes"]
        n = r["N"]
        table("Redis memory per job (used_memory deltas, %s jobs)" % fmt(n),
              ["state", "bytes/job"],
              [["pending (queued, not yet run)",
                fmt((mem["p1_enq_end"] - mem["p1_enq_start"]) / n)],
               ["finished (after the drain, stats kept until their TTL)",
                fmt((mem["p1_drain_end"] - mem["p1_enq_start"]) / n)]])
        self.rss_rows = [[
            "idle after the latency run (10 workers, BENCH only)",
            fmt(extra["rss_idle_kib"] / 1024.0, 1), "-"]]

    def print_idle(self):
        rows = getattr(self, "idle_rows", [])
        if rows:
            table("Idle: Redis commands/s issued while no jobs arrive",
                  ["window", "seconds", "commands/s", "top commands (count)"],
                  rows)

    def batch(self):
        a = self.a
        d = self.case_dir("batch")
        self.flush()
        say("batch: %d jobs per mode, sizes %s" % (a.jobs, a.batch_sizes))
        b = Bench(self.build, self.addr, d, 10, gate=a.gate)
        rows, res = [], {}
        try:
            b.start()
            b.hold()
            first = 0
            for k in [0] + a.batch_sizes:
                label = "single" if k == 0 else "batch %d" % k
                b.stats.snap(label + "_a")
                try:
                    secs = enqueue(b.http, a.jobs, 5, batch=k, first=first)
                except BatchRouteMissing as e:
                    say(str(e))
                    rows.append([label, "skipped: the batch route answered "
                                 "%d (missing)" % e.status, "-", "-", "-"])
                    res[label] = dict(skipped=str(e))
                    continue
                first += a.jobs
                b.stats.snap(label + "_b")
                dl = b.stats.delta(label + "_a", label + "_b", a.jobs)
                res[label] = dict(rate=a.jobs / secs, **dl)
                rows.append([label if k else "single (POST /api/v1/jobs)",
                             fmt(a.jobs / secs), fmt(dl["cmds_per_job"], 2),
                             fmt(dl["reads_per_job"], 3),
                             fmt(dl["redis_cpu_us_per_job"])])
        finally:
            b.close()
        self.results["batch"] = res
        table("Submit rate, one keep-alive connection, one request in flight "
              "(%s jobs each, workers gated)" % fmt(a.jobs),
              ["route", "jobs/s", "cmds/job", "round trips/job",
               "Redis CPU µs/job"], rows)

    def backlog(self):
        a = self.a
        M = a.backlog
        d = self.case_dir("backlog")
        self.flush()
        per = 1000 if a.backlog_submit == "batch" else 0
        say("backlog: %d jobs (%s), 10 workers" % (M, a.backlog_submit))
        b = Bench(self.build, self.addr, d, 10, gate=a.gate, light=("4",))
        st = b.stats
        res = {}
        try:
            b.start()
            b.hold()
            st.snap("base")
            try:
                secs = enqueue(b.http, M, 4, batch=per)
            except BatchRouteMissing as e:
                say("backlog skipped: %s (--backlog-submit single enqueues "
                    "through POST /api/v1/jobs)" % e)
                print("\n#### Backlog\n\nskipped: %s\n" % e)
                self.results["backlog"] = dict(skipped=str(e))
                return
            st.snap("pending")
            res["enqueue_rate"] = M / secs
            b.sampler.sample()
            rss_pending = b.sampler.last_rss
            t_release = now_ms()
            b.release()
            ok = b.records.wait_for(4, M, max(600.0, M / 100.0))
            st.snap("drained")
            b.sampler.sample()
            time.sleep(a.idle_secs)
            st.snap("idle")
            b.sampler.sample()
            res["complete"] = ok
            done = sorted(b.records.done.get("4", []))
            t0 = b.records.first_start.get("4", t_release)
            slices = []
            prev = t0
            for k in range(10):
                hi = min(len(done), (k + 1) * M // 10)
                lo = k * M // 10
                if hi <= lo:
                    break
                t = done[hi - 1]
                slices.append(dict(jobs=hi - lo, secs=(t - prev) / 1000.0,
                                   rate=(hi - lo) / max((t - prev) / 1000.0,
                                                        1e-6)))
                prev = t
            res["slices"] = slices
            res["drain_rate"] = (len(done) / ((done[-1] - t0) / 1000.0)
                                 if done else 0.0)
            res["drain_wall_rate"] = (len(done) / ((done[-1] - t_release)
                                                   / 1000.0) if done else 0.0)
            res["peak_rss_kib"] = b.sampler.peak_rss
            res["rss_pending_kib"] = rss_pending
            res["rss_end_kib"] = b.sampler.last_rss
            res["mem"] = {k: st.snaps[k]["mem"] for k in
                          ("base", "pending", "drained", "idle")}
            res["drain"] = st.delta("pending", "drained", M)
            res["idle"] = st.delta("drained", "idle", 0)
        finally:
            b.close()
        self.results["backlog"] = res
        rows = [["%d-%d %%" % (k * 10, k * 10 + 10), fmt(s["jobs"]),
                 fmt(s["secs"], 1), fmt(s["rate"])]
                for k, s in enumerate(res["slices"])]
        table("Backlog: %s jobs enqueued (%s) while gated, then drained by "
              "10 workers" % (fmt(M), "batch route, 1000 per request"
                              if per else "single submits"),
              ["slice of the drain", "jobs", "seconds", "jobs/s"], rows)
        mib = 1048576.0
        m = res["mem"]
        table("Backlog: totals",
              ["figure", "value"],
              [["enqueue jobs/s", fmt(res["enqueue_rate"])],
               ["drain jobs/s (first start to last completion)",
                fmt(res["drain_rate"])],
               ["drain cmds/job, round trips/job",
                "%s, %s" % (fmt(res["drain"]["cmds_per_job"], 2),
                            fmt(res["drain"]["reads_per_job"], 2))],
               ["complete", "yes" if res["complete"] else "NO"],
               ["berthd peak RSS MiB", fmt(res["peak_rss_kib"] / 1024.0, 1)],
               ["berthd RSS MiB with the backlog queued / at the end",
                "%s / %s" % (fmt(res["rss_pending_kib"] / 1024.0, 1),
                             fmt(res["rss_end_kib"] / 1024.0, 1))],
               ["Redis used_memory MiB: before / queued / drained / +%gs" %
                a.idle_secs, " / ".join(fmt(m[k] / mib, 1) for k in
                                        ("base", "pending", "drained",
                                         "idle"))],
               ["Redis bytes per pending job",
                fmt((m["pending"] - m["base"]) / M)],
               ["Redis bytes per finished job",
                fmt((m["drained"] - m["base"]) / M)]])
        if not hasattr(self, "idle_rows"):
            self.idle_rows = []
        self.idle_rows.append(["%g s after the backlog's drain" % a.idle_secs,
                               fmt(res["idle"]["secs"], 1),
                               fmt(res["idle"]["cmds_per_s"], 1),
                               top_cmds(res["idle"]["by_cmd"])])

    def rss(self):
        d = self.case_dir("rss")
        self.flush()
        say("rss: idle berthd, 10 workers, every bundled plugin")
        dm = Daemon(self.build, self.addr, 10, d, types=0, all_plugins=True)
        try:
            dm.start()
            time.sleep(3)
            best = (0, 0)
            for _ in range(5):
                rss, pss, _, _ = tree_memory(dm.proc.pid)
                best = max(best, (rss, pss))
                time.sleep(0.4)
        finally:
            dm.stop()
            dm.cleanup()
        n = sum(1 for l in peer.bundled_entries()[0].splitlines()
                if l.strip().startswith("- name:"))
        self.results["rss"] = dict(rss_kib=best[0], pss_kib=best[1],
                                   types=n)
        rows = [["idle, 10 workers, all bundled plugins (%d job types)" % n,
                 fmt(best[0] / 1024.0, 1), fmt(best[1] / 1024.0, 1)]]
        rows += getattr(self, "rss_rows", [])
        table("berthd footprint", ["state", "RSS MiB", "PSS MiB"], rows)

    # --- the peers harness ------------------------------------------------

    def peers_dir(self):
        return os.path.abspath(self.a.peers_dir or os.environ.get(
            "BENCH_PEERS_DIR") or os.path.join(peer.REPO, "..", "shared",
                                               "bench-peers"))

    def peers_missing(self, pd):
        if not os.path.exists(os.path.join(pd, "run_all.sh")):
            return "no run_all.sh in %s (--peers-dir)" % pd
        if not os.path.isdir(os.path.join(pd, "node", "node_modules")):
            return "%s/node/node_modules is missing (run its install.sh)" % pd
        try:
            ok = subprocess.run(["ruby", "-e", "require 'sidekiq'"],
                                capture_output=True, timeout=60).returncode
        except (OSError, subprocess.SubprocessError):
            ok = 1
        if ok != 0:
            return "Ruby's sidekiq is not installed (ruby-sidekiq)"
        return None

    def peers(self):
        pd = self.peers_dir()
        why = self.peers_missing(pd)
        if why:
            say("peers skipped: " + why)
            print("\n#### Peers\n\nskipped: %s\n" % why)
            return
        run_dir = os.path.join(self.out, "peers-run")
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = "python3 %s --build %s --gate %s" % (
            shlex.quote(os.path.join(HERE, "peer.py")),
            shlex.quote(self.build), self.a.gate)
        env = dict(os.environ, PEERS=" ".join(PEER_NAMES + ("berth",)),
                   PEER_CMD_berth=cmd, N=str(self.a.peers_jobs),
                   C=os.environ.get("C", "10"), RUN_DIR=run_dir)
        say("peers: %s/run_all.sh, PEERS=%r, N=%s, REPEAT=%s" %
            (pd, env["PEERS"], env["N"], env.get("REPEAT", "1")))
        with open(os.path.join(self.out, "peers-summary.txt"), "w") as f:
            subprocess.run([os.path.join(pd, "run_all.sh")], env=env,
                           stdout=f, cwd=pd)
        runs = {}
        for name in sorted(os.listdir(run_dir)) if os.path.isdir(
                run_dir) else []:
            p = os.path.join(run_dir, name, "result.json")
            rep, _, who = name.partition("-")
            if not rep.isdigit() or not os.path.isdir(
                    os.path.join(run_dir, name)):
                continue
            try:
                with open(p) as f:
                    runs.setdefault(int(rep), {})[who] = json.load(f)
            except (OSError, ValueError):
                runs.setdefault(int(rep), {})[who] = None
        self.results["peers"] = dict(run_dir=run_dir, runs=runs)
        rows = []
        for rep in sorted(runs):
            for who in PEER_NAMES + ("berth",):
                r = runs[rep].get(who)
                if not r:
                    rows.append([str(rep), who, "FAILED (see %s/%d-%s.stderr)"
                                 % (run_dir, rep, who)] + ["-"] * 6)
                    continue
                s = r["steady"]
                rows.append([str(rep), who, fmt(r["enqueue_rate"]),
                             fmt(r["process_rate"]), fmt(s.get("p50_ms"), 2),
                             fmt(s.get("p99_ms"), 2),
                             fmt(r["worker_peak_rss_mib"], 1),
                             fmt(r["phases"]["enqueue"]["cmds_per_job"] +
                                 r["phases"]["drain"]["cmds_per_job"], 1),
                             fmt(r["phases"]["enqueue"]["redis_cpu_us_per_job"]
                                 + r["phases"]["drain"][
                                     "redis_cpu_us_per_job"])])
        table("Peers, same run (N=%s, C=%s; p50/p99 at the steady rate)" %
              (env["N"], env["C"]),
              ["rep", "peer", "enqueue jobs/s", "process jobs/s", "p50 ms",
               "p99 ms", "peak RSS MiB", "Redis cmds/job", "Redis CPU µs/job"],
              rows)
        rows, ratios = [], {}
        for rep in sorted(runs):
            br = runs[rep].get("berth")
            for who in PEER_NAMES:
                pr = runs[rep].get(who)
                if not br or not pr:
                    continue
                q = dict(
                    process=br["process_rate"] / pr["process_rate"],
                    enqueue=br["enqueue_rate"] / pr["enqueue_rate"],
                    p99=(br["steady"].get("p99_ms") or 0) /
                    (pr["steady"].get("p99_ms") or float("nan")))
                ratios.setdefault(who, []).append(q)
                rows.append([str(rep), who, fmt(q["process"], 2),
                             fmt(q["enqueue"], 2), fmt(q["p99"], 2)])
        for who, qs in ratios.items():
            if len(qs) > 1:
                rows.append(["median", who] + [
                    fmt(statistics.median(q[k] for q in qs), 2)
                    for k in ("process", "enqueue", "p99")])
        table("Berth / peer, per rep (process and enqueue: > 1 is Berth "
              "faster; p99: < 1 is Berth lower)",
              ["rep", "peer", "process ×", "enqueue ×", "p99 ×"], rows)
        print("\nharness summary: %s/peers-summary.txt, run dir %s" %
              (self.out, run_dir))

    # --- main -------------------------------------------------------------

    def header(self):
        try:
            rev = subprocess.run(["git", "-C", peer.REPO, "describe",
                                  "--always", "--dirty"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            rev = "?"
        ver = peer.berthd_version(self.build)
        print("### Berth benchmark suite\n")
        print("%s; berthd %s (%s), build %s; redis-server %s; %d CPUs; "
              "gate %s" % (time.strftime("%Y-%m-%d %H:%M UTC",
                                         time.gmtime()), ver, rev or "?",
                           self.build, self.redis_version,
                           os.cpu_count() or 0, self.a.gate))
        sys.stdout.flush()

    def run(self, sections):
        self.start_redis()
        try:
            self.header()
            for s in SECTIONS[:-1]:
                if s == "rss":
                    self.print_idle()
                if s in sections:
                    getattr(self, s)()
        finally:
            self.redis.stop()
            shutil.rmtree(os.path.join(self.out, "redis-tmp"),
                          ignore_errors=True)
            with open(os.path.join(self.out, "suite.json"), "w") as f:
                json.dump(self.results, f, indent=1)
        if "peers" in sections:
            self.peers()
            with open(os.path.join(self.out, "suite.json"), "w") as f:
                json.dump(self.results, f, indent=1)
        say("raw results: %s/suite.json" % self.out)


def int_list(s):
    return [int(x) for x in s.split(",") if x.strip()]


def main():
    ap = argparse.ArgumentParser(
        description="Berth's benchmark suite; see the docstring",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--build", default=os.path.join(peer.REPO, "build"))
    ap.add_argument("--only", default=",".join(SECTIONS[:-1]),
                    help="comma list of: " + ", ".join(SECTIONS))
    ap.add_argument("--jobs", type=int, default=20000,
                    help="jobs per run of workers, types, latency, batch")
    ap.add_argument("--workers-list", type=int_list, default=[1, 4, 10, 50])
    ap.add_argument("--types-list", type=int_list, default=[1, 17, 100])
    ap.add_argument("--steady-rate", type=float, default=1000.0)
    ap.add_argument("--steady-secs", type=float, default=5.0)
    ap.add_argument("--idle-secs", type=float, default=10.0,
                    help="idle before the burst, and after the backlog")
    ap.add_argument("--burst-jobs", type=int, default=1000)
    ap.add_argument("--batch-sizes", type=int_list, default=[100, 1000])
    ap.add_argument("--backlog", type=int, default=1000000)
    ap.add_argument("--backlog-submit", choices=("batch", "single"),
                    default="batch")
    ap.add_argument("--gate", choices=("pause", "jobs"), default="jobs",
                    help="how workers are kept from fetching while jobs are "
                         "enqueued (peer.py; jobs: one gate job per worker)")
    ap.add_argument("--peers", action="store_true",
                    help="also run the peers harness (section peers)")
    ap.add_argument("--peers-dir", default=None)
    ap.add_argument("--peers-jobs", type=int, default=20000)
    ap.add_argument("--out", default=None,
                    help="directory for raw results (default: a new "
                         "temporary one)")
    a = ap.parse_args()
    sections = set(x.strip() for x in a.only.split(",") if x.strip())
    bad = sections - set(SECTIONS)
    if bad:
        ap.error("unknown section(s) %s; known: %s" %
                 (", ".join(sorted(bad)), ", ".join(SECTIONS)))
    if a.peers:
        sections.add("peers")
    if not os.path.exists(os.path.join(a.build, "tests", "plugins",
                                       "record.so")):
        ap.error("%s/tests/plugins/record.so is missing: build first "
                 "(cmake --build %s)" % (a.build, a.build))
    Suite(a).run(sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
