#!/usr/bin/env python3
"""Berth benchmark (not part of the default test run).

  tests/bench/run.py [--build build] [--jobs 20000] [--workers 10]
                     [--clients 4] [--rate 1000] [--seconds 5]

Starts a private redis-server (unix socket) and berthd from the build tree,
then prints:
  1. enqueue rate through POST /api/v1/jobs with keep-alive clients
     (the job type is paused, so nothing runs meanwhile);
  2. end-to-end throughput of no-op jobs (all --jobs, --workers workers);
  3. end-to-end latency p50/p99 at a steady --rate jobs/s (submit to run
     start, measured by the STAMP plugin with microsecond stamps);
  4. Redis commands per job (INFO commandstats delta over phase 3, which
     counts the commands Lua scripts run too);
  5. the daemon's RSS.
Build with optimisation first: cmake -S . -B build && cmake --build build.
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
from harness import Resp, RedisServer, wait_for  # noqa: E402

SECRET = "bench-secret"
NS = "{bench}"


def commandstats(r):
    info = r("INFO", "commandstats")
    total, per = 0, {}
    for line in info.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[8:].split(":", 1)
            calls = int(rest.split(",")[0].split("=")[1])
            per[name] = calls
            total += calls
    return total, per


def post_job(conn, name, params):
    body = json.dumps({"job": {"name": name, "parameters": params,
                               "metadata": {"kind": "Generic"}}})
    conn.request("POST", "/api/v1/jobs", body=body,
                 headers={"Authorization": "Harbor-Secret " + SECRET,
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 202:
        raise RuntimeError("submit failed: %s %s" % (r.status, data[:200]))
    return json.loads(data)["job"]["id"]


def run_clients(port, n_clients, total, name, params_fn, rate=None,
                record=None):
    """Submits total jobs from n_clients keep-alive connections."""
    per = [total // n_clients + (1 if i < total % n_clients else 0)
           for i in range(n_clients)]
    errors = []
    t_start = time.monotonic()

    def client(idx):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for k in range(per[idx]):
                if rate:
                    # client idx sends its k-th job at a fixed slot
                    slot = t_start + (k * n_clients + idx) / rate
                    delay = slot - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                t_ms = time.time() * 1000
                jid = post_job(conn, name, params_fn(idx, k))
                if record is not None:
                    record[jid] = t_ms
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t_start


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..",
                                                     "build"))
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="berth-bench-")
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
                    "  - name: STAMP\n    file: stamp.so\n"
                    "    settings:\n      out_file: %s\n" % (pdir, stamps))
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
        rss0 = rss_kib(proc.pid)

        # 1. enqueue rate (type paused, nothing runs)
        r("SET", NS + ":jobs:NOOP:paused", "1")
        secs = run_clients(port, a.clients, a.jobs, "NOOP",
                           lambda i, k: {"i": i, "k": k})
        enq_rate = a.jobs / secs
        # 2. throughput: release the queue and wait until it is drained
        t0 = time.monotonic()
        r("DEL", NS + ":jobs:NOOP:paused")
        while True:
            left = r("LLEN", NS + ":jobs:NOOP")
            lock = int(r("GET", NS + ":jobs:NOOP:lock") or 0)
            if left == 0 and lock == 0:
                break
            time.sleep(0.005)
        thr_secs = time.monotonic() - t0


        # 3. latency at a steady rate
        n_lat = a.rate * a.seconds
        sent = {}
        total0, per0 = commandstats(r)
        run_clients(port, max(a.clients, 8), n_lat, "STAMP",
                    lambda i, k: {}, rate=a.rate, record=sent)

        def all_stamped():
            try:
                with open(stamps) as f:
                    return sum(1 for _ in f) >= n_lat
            except OSError:
                return False
        wait_for(all_stamped, timeout=120, step=0.1, what="stamps")
        # let the last jobs finish their bookkeeping, then count
        wait_for(lambda: int(r("GET", NS + ":jobs:STAMP:lock") or 0) == 0,
                 timeout=30, what="STAMP lock at 0")
        total1, per1 = commandstats(r)
        own = 3  # the two INFO calls and the GET above
        cmds_per_job = (total1 - total0 - own) / n_lat
        top = sorted(((per1.get(k, 0) - per0.get(k, 0), k) for k in per1),
                     reverse=True)[:8]
        lat = []
        with open(stamps) as f:
            for line in f:
                jid, ms = line.split()
                if jid in sent:
                    lat.append(int(ms) / 1000.0 - sent[jid])
        rss1 = rss_kib(proc.pid)

        print("berth benchmark (%d workers, %d clients, redis unix socket)"
              % (a.workers, a.clients))
        print("  enqueue rate          %9.0f jobs/s  (%d jobs, keep-alive)"
              % (enq_rate, a.jobs))
        print("  end-to-end throughput %9.0f jobs/s  (%d no-op jobs, %.2f s)"
              % (a.jobs / thr_secs, a.jobs, thr_secs))
        print("  latency at %d/s       p50 %5.1f ms  p99 %5.1f ms  "
              "(%d jobs, submit to run)" % (a.rate, pct(lat, 50),
                                            pct(lat, 99), len(lat)))
        print("  redis commands/job    %9.1f        (steady phase, submit + "
              "run, incl. commands inside Lua scripts; top: %s)"
              % (cmds_per_job, ", ".join("%s=%.1f" % (k, n / n_lat)
                                         for n, k in top if n)))
        print("  daemon RSS            %9.1f MiB    (idle %.1f MiB)"
              % (rss1 / 1024.0, rss0 / 1024.0))
        print(json.dumps({"enqueue_per_s": round(enq_rate),
                          "throughput_per_s": round(a.jobs / thr_secs),
                          "latency_p50_ms": pct(lat, 50),
                          "latency_p99_ms": pct(lat, 99),
                          "redis_cmds_per_job": round(cmds_per_job, 2),
                          "rss_mib": round(rss1 / 1024.0, 1)}))
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        r.close()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
