#!/usr/bin/env python3
"""Cost of process isolation (not part of the default test run).

  tests/bench/isolation.py [--build build] [--jobs 2000] [--workers 4]
                           [--latency-jobs 200]

For each mode (`isolation: thread`, then `isolation: process`) starts a
private redis-server and berthd from the build tree and prints:
  1. throughput: --jobs no-op jobs (NOOP, tests/plugins/engine) enqueued
     while the type is paused, then drained by --workers workers;
  2. per-job latency, one job at a time (nothing else running): submit to
     run() entered (the STAMP plugin's microsecond stamp, taken inside the
     runner process when isolated) and submit to status Success (the stats
     hash polled every millisecond);
then the difference. Build with optimisation first.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
from harness import RedisServer, wait_for  # noqa: E402
from run import SECRET, pct, post_job, run_clients  # noqa: E402

NS = "{bench}"


def one_mode(build, mode, a):
    tmp = tempfile.mkdtemp(prefix="berth-bench-iso-")
    redis = RedisServer(tmp).start()
    r = redis.client()
    proc = None
    try:
        pdir = os.path.join(tmp, "plugins")
        os.makedirs(pdir)
        shutil.copy(os.path.join(build, "tests/plugins/engine.so"), pdir)
        shutil.copy(os.path.join(build, "tests/plugins/stamp.so"), pdir)
        stamps = os.path.join(tmp, "stamps.txt")
        with open(os.path.join(tmp, "plugins.yml"), "w") as f:
            f.write("plugin_dir: %s\nplugins:\n"
                    "  - name: NOOP\n    file: engine.so\n"
                    "    isolation: %s\n"
                    "  - name: STAMP\n    file: stamp.so\n"
                    "    isolation: %s\n"
                    "    settings:\n      out_file: %s\n"
                    % (pdir, mode, mode, stamps))
        with open(os.path.join(tmp, "berth.yml"), "w") as f:
            f.write("""protocol: http
port: 8080
worker_pool:
  workers: %d
  backend: redis
  redis_pool:
    redis_url: "%s"
    namespace: bench
job_loggers:
  - name: STD_OUTPUT
    level: ERROR
loggers:
  - name: STD_OUTPUT
    level: WARNING
berth:
  data_dir: %s/data
  plugin_manifest: %s/plugins.yml
  listen_address: 127.0.0.1
""" % (a.workers, redis.sock, tmp, tmp))
        env = dict(os.environ, CORE_SECRET=SECRET, JOB_SERVICE_PORT="0")
        port_file = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "berthd.log"), "wb")
        proc = subprocess.Popen([os.path.join(build, "berthd"), "-c",
                                 os.path.join(tmp, "berth.yml"),
                                 "--port-file", port_file],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(port_file), timeout=30,
                 what="berthd")
        port = int(open(port_file).read())

        # 1. throughput
        r("SET", NS + ":jobs:NOOP:paused", "1")
        run_clients(port, 4, a.jobs, "NOOP", lambda i, k: {"i": i, "k": k})
        t0 = time.monotonic()
        r("DEL", NS + ":jobs:NOOP:paused")
        while True:
            left = r("LLEN", NS + ":jobs:NOOP")
            lock = int(r("GET", NS + ":jobs:NOOP:lock") or 0)
            if left == 0 and lock == 0:
                break
            time.sleep(0.005)
        secs = time.monotonic() - t0

        # 2. latency, one job at a time
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        to_run, to_done = [], []
        sent = {}
        for _ in range(a.latency_jobs):
            t_ms = time.time() * 1000
            jid = post_job(conn, "STAMP", {})
            sent[jid] = t_ms
            key = NS + ":job_stats:" + jid
            while r("HGET", key, "status") != "Success":
                time.sleep(0.001)
            to_done.append(time.time() * 1000 - t_ms)
        conn.close()
        with open(stamps) as f:
            for line in f:
                jid, us = line.split()
                if jid in sent:
                    to_run.append(int(us) / 1000.0 - sent[jid])
        errors = open(os.path.join(tmp, "berthd.log"), "rb").read()
        return {"jobs_s": a.jobs / secs, "secs": secs,
                "run50": pct(to_run, 50), "run99": pct(to_run, 99),
                "done50": pct(to_done, 50), "done99": pct(to_done, 99),
                "done_mean": sum(to_done) / len(to_done),
                "log_bytes": len(errors)}
    finally:
        r.close()
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..",
                                                     "build"))
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--latency-jobs", type=int, default=200)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    res = {m: one_mode(build, m, a) for m in ("thread", "process")}
    print("berth isolation benchmark (%d workers, %d no-op jobs, %d "
          "sequential jobs for latency)" % (a.workers, a.jobs,
                                            a.latency_jobs))
    for m in ("thread", "process"):
        x = res[m]
        print("  %-8s throughput %7.0f jobs/s (%.2f s)   submit->run p50 "
              "%6.2f ms p99 %6.2f ms   submit->Success p50 %6.2f ms p99 "
              "%6.2f ms" % (m, x["jobs_s"], x["secs"], x["run50"],
                            x["run99"], x["done50"], x["done99"]))
    t, p = res["thread"], res["process"]
    print("  isolation costs %.2f ms per job (mean submit->Success), "
          "throughput x%.2f" % (p["done_mean"] - t["done_mean"],
                                p["jobs_s"] / t["jobs_s"]))


if __name__ == "__main__":
    main()
