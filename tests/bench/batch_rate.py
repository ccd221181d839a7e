#!/usr/bin/env python3
"""Enqueue rate of POST /api/v1/jobs/batch (not part of the default test
run).

  tests/bench/batch_rate.py [--build build] [--jobs 100000] [--batch 1000]
                            [--clients 1]

Starts a private redis-server (unix socket) and berthd from the build tree,
pauses the job type (nothing runs meanwhile) and submits --jobs no-op jobs
in batches of --batch from --clients keep-alive connections (one request in
flight each). Prints jobs/s, Redis commands and read events per job, and
the same for the single route (POST /api/v1/jobs) on one connection for
comparison (--jobs 0: the single route only, e.g. for a build without the
batch route).

With --gate every worker is first given a long SLEEPER job, so no idle
worker wakes up on the enqueues (a paused type still wakes idle workers,
whose fetch then finds nothing): the figures are those of the submit path
alone.
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import RedisServer, wait_for  # noqa: E402

SECRET = "bench-secret"
NS = "{bench}"
HDR = {"Authorization": "Harbor-Secret " + SECRET,
       "Content-Type": "application/json"}


def cpu_s(pid):
    """utime + stime of a process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf(
        "SC_CLK_TCK"))


def counters(r, pid=None):
    """Redis commands, read events and CPU seconds; berthd's CPU seconds
    when pid is given."""
    cmds = 0
    for line in r("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            cmds += int(line.split(":", 1)[1].split(",")[0].split("=")[1])
    reads = 0
    for line in r("INFO", "stats").splitlines():
        if line.startswith("total_reads_processed:"):
            reads = int(line.split(":")[1])
    rcpu = 0.0
    for line in r("INFO", "cpu").splitlines():
        if line.startswith(("used_cpu_sys:", "used_cpu_user:")):
            rcpu += float(line.split(":")[1])
    return cmds, reads, rcpu, cpu_s(pid) if pid else 0.0


def per_job(c0, c1, n, key, res):
    res[key + "_redis_cmds_per_job"] = round((c1[0] - c0[0]) / n, 2)
    res[key + "_redis_reads_per_job"] = round((c1[1] - c0[1]) / n, 4)
    res[key + "_redis_cpu_us_per_job"] = round((c1[2] - c0[2]) * 1e6 / n, 1)
    res[key + "_berthd_cpu_us_per_job"] = round((c1[3] - c0[3]) * 1e6 / n,
                                                1)


def job(i):
    return {"job": {"name": "NOOP", "parameters": {"i": i},
                    "metadata": {"kind": "Generic"}}}


def run_batches(port, total, size, clients):
    per = [total // clients + (1 if i < total % clients else 0)
           for i in range(clients)]
    errors = []

    def client(idx):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            left = per[idx]
            while left:
                n = min(size, left)
                body = json.dumps({"jobs": [job(k) for k in range(n)]})
                conn.request("POST", "/api/v1/jobs/batch", body=body,
                             headers=HDR)
                r = conn.getresponse()
                data = r.read()
                if r.status != 200:
                    raise RuntimeError("batch: %s %s" % (r.status,
                                                         data[:200]))
                out = json.loads(data)["jobs"]
                bad = [o for o in out if "job" not in o]
                if bad:
                    raise RuntimeError("batch item refused: %s" % bad[0])
                left -= n
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t0


def run_single(port, total):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.monotonic()
    for k in range(total):
        conn.request("POST", "/api/v1/jobs", body=json.dumps(job(k)),
                     headers=HDR)
        r = conn.getresponse()
        data = r.read()
        if r.status != 202:
            raise RuntimeError("submit: %s %s" % (r.status, data[:200]))
    conn.close()
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..",
                                                     "build"))
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--single", type=int, default=10000,
                    help="jobs through the single route (0: skip)")
    ap.add_argument("--gate", action="store_true",
                    help="occupy every worker with a SLEEPER job first")
    ap.add_argument("--workers", type=int, default=10)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="berth-batch-")
    redis = RedisServer(tmp).start()
    r = redis.client()
    proc = None
    try:
        pdir = os.path.join(tmp, "plugins")
        os.makedirs(pdir)
        shutil.copy(os.path.join(build, "tests/plugins/engine.so"), pdir)
        with open(os.path.join(tmp, "plugins.yml"), "w") as f:
            f.write("plugin_dir: %s\nplugins:\n"
                    "  - name: NOOP\n    file: engine.so\n"
                    "  - name: SLEEPER\n    file: engine.so\n" % pdir)
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
  shutdown_grace_seconds: 1
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
        r("SET", NS + ":jobs:NOOP:paused", "1")
        if a.gate:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(a.workers):
                conn.request("POST", "/api/v1/jobs", body=json.dumps(
                    {"job": {"name": "SLEEPER",
                             "parameters": {"ms": 3600 * 1000},
                             "metadata": {"kind": "Generic"}}}),
                    headers=HDR)
                resp = conn.getresponse()
                resp.read()
                assert resp.status == 202, resp.status
            conn.close()
            wait_for(lambda: int(r("GET", NS + ":jobs:SLEEPER:lock") or 0)
                     == a.workers, timeout=30, what="every worker busy")
        res = {}
        if a.jobs:
            c0 = counters(r, proc.pid)
            secs = run_batches(port, a.jobs, a.batch, a.clients)
            c1 = counters(r, proc.pid)
            res["batch_jobs_per_s"] = round(a.jobs / secs)
            per_job(c0, c1, a.jobs, "batch", res)
            print("batch route   %9.0f jobs/s  (%d jobs in batches of %d, "
                  "%d client(s)); per job: %.2f Redis commands, %.4f read "
                  "events, Redis CPU %.1f us, berthd CPU %.1f us"
                  % (a.jobs / secs, a.jobs, a.batch, a.clients,
                     res["batch_redis_cmds_per_job"],
                     res["batch_redis_reads_per_job"],
                     res["batch_redis_cpu_us_per_job"],
                     res["batch_berthd_cpu_us_per_job"]))
        if a.single:
            c0 = counters(r, proc.pid)
            secs = run_single(port, a.single)
            c1 = counters(r, proc.pid)
            res["single_jobs_per_s"] = round(a.single / secs)
            per_job(c0, c1, a.single, "single", res)
            print("single route  %9.0f jobs/s  (%d jobs, 1 client); per "
                  "job: %.2f Redis commands, %.3f read events, Redis CPU "
                  "%.1f us, berthd CPU %.1f us"
                  % (a.single / secs, a.single,
                     res["single_redis_cmds_per_job"],
                     res["single_redis_reads_per_job"],
                     res["single_redis_cpu_us_per_job"],
                     res["single_berthd_cpu_us_per_job"]))
        print(json.dumps(res))
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        r.close()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
