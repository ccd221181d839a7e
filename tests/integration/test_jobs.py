"""Job engine over real HTTP and a real Redis: submit, run, track, retry,
unique, pause, stop in every state, list, max_concurrency across two
daemons, kill -9 recovery, Redis down during submit, and a conformance pass
that reads Redis exactly as Harbor core's dashboard does (spec 12.4)."""
import json
import os
import time
import unittest

from harness import (HEX24, NS, Cluster, hgetall, job, submit, submit_ok,
                     wait_for, wait_run_ended, wait_status, wait_log,
                     make_retries_due, stop_job)


def plugins(sleeper_conc=0):
    return """  - name: DEMO
    file: demo.so
    max_fails: 3
    max_concurrency: 1
    priority: 1
    settings:
      long_wait_seconds: 1
  - name: NOOP
    file: engine.so
  - name: SLEEPER
    file: engine.so
    max_concurrency: %d
  - name: FLAKY
    file: engine.so
    max_fails: 3
  - name: IGNORE_STOP
    file: engine.so
""" % sleeper_conc


class JobApiTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(plugins())
        cls.d = cls.c.start()
        cls.r = cls.c.client()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()

    def test_generic_lifecycle_and_redis_layout(self):
        st, h, doc = submit(self.d, "NOOP", {"x": 1, "s": "<a/b>"})
        self.assertEqual(st, 202, doc)
        self.assertEqual(h["Content-Type"], "application/json")
        j = doc["job"]
        self.assertRegex(j["id"], HEX24)
        self.assertEqual(j["status"], "Pending")
        self.assertEqual(j["kind"], "Generic")
        self.assertEqual(j["unique"], False)
        self.assertEqual(j["ref_link"], "/api/v1/jobs/" + j["id"])
        self.assertNotIn("revision", j)
        self.assertEqual(j["parameters"], {"x": 1, "s": "<a/b>"})
        self.assertEqual(list(j)[:5], ["id", "status", "name", "kind",
                                       "unique"])
        done = wait_status(self.d, j["id"], "Success")
        self.assertGreaterEqual(done["revision"], j["enqueue_time"])
        h = hgetall(self.r, NS + ":job_stats:" + j["id"])
        for f in ["id", "name", "kind", "unique", "status", "ref_link",
                  "enqueue_time", "run_at", "cron_spec", "web_hook_url",
                  "numeric_policy_id", "update_time", "revision",
                  "parameters"]:
            self.assertIn(f, h)
        self.assertEqual(h["unique"], "0")
        self.assertEqual(h["run_at"], "0")
        self.assertEqual(h["parameters"], '{"s":"\\u003ca/b\\u003e","x":1}')
        ttl = self.r("TTL", NS + ":job_stats:" + j["id"])
        self.assertTrue(86000 < ttl <= 86400, ttl)
        # no hook, so no ACK can come: the final status removed the entry
        # at once (issue 11; Go keeps it at 1 until the stats expire)
        self.assertIsNone(self.r("HGET", NS + ":job_track:inprogress",
                                 j["id"]))
        self.assertEqual(self.r("GET", NS + ":jobs:NOOP:lock"), "0")

    def test_demo_runs_with_checkins(self):
        st, _, doc = submit(self.d, "DEMO", {"image": "demo-1"})
        self.assertEqual(st, 202, doc)
        done = wait_status(self.d, doc["job"]["id"], "Success", timeout=30)
        self.assertGreater(done["check_in_at"], 0)
        self.assertNotIn("check_in", done)

    def test_scheduled_job(self):
        before = int(time.time())
        st, _, doc = submit(self.d, "NOOP", {}, kind="Scheduled", delay=1)
        self.assertEqual(st, 202, doc)
        j = doc["job"]
        self.assertEqual(j["status"], "Scheduled")
        self.assertIn(j["run_at"] - before, (1, 2))
        self.assertNotIn("parameters", j)
        self.assertEqual(self.r("ZCOUNT", NS + ":scheduled", j["run_at"],
                                j["run_at"]) >= 1, True)
        wait_status(self.d, j["id"], "Success", timeout=15)

    def test_bad_submissions(self):
        cases = [
            ({"job": {"name": "NOPE", "metadata": {"kind": "Generic"}}},
             400, 10013, "job with name 'NOPE' is unknown"),
            ({"job": {"name": "DEMO", "parameters": {"image": "x"},
                      "metadata": {"kind": "Generic"}}},
             400, 10013, "expected 'demo *' but got 'x'"),
            ({"job": {"name": "DEMO", "metadata": {"kind": "Generic"}}},
             400, 10013, None),
            ({}, 400, 10013, "empty job request is not allowed"),
            ({"job": {"name": "  ", "metadata": {"kind": "Generic"}}},
             400, 10013, "name of job must be specified"),
            ({"job": {"name": "NOOP"}}, 400, 10013,
             "metadata of job is missing"),
            ({"job": {"name": "NOOP", "metadata": {"kind": "generic"}}},
             400, 10013, "job kind 'generic' is not supported, only support "
             "'Generic','Scheduled','Periodic'"),
            ({"job": {"name": "NOOP", "metadata": {"kind": "Scheduled"}}},
             400, 10013, "'schedule_delay' must be specified for Scheduled job"),
            ({"job": {"name": "NOOP", "metadata": {"kind": "Periodic"}}},
             400, 10013, "'cron_spec' must be specified for the Periodic job"),
            ({"job": {"name": "NOOP", "metadata": {
                "kind": "Scheduled", "schedule_delay": 10 ** 15}}},
             400, 10013, None),
            ({"job": {"name": "NOOP", "metadata": {
                "kind": "Scheduled", "schedule_delay": -5}}}, 500, 10001, None),
            ({"job": {"name": "NOOP", "parameters": [1, 2],
                      "metadata": {"kind": "Generic"}}}, 500, 10001, None),
            ({"job": {"name": "NOOP", "parameters": "x",
                      "metadata": {"kind": "Generic"}}}, 500, 10001, None),
            ({"job": {"name": "NOOP", "metadata": {
                "kind": "Periodic", "cron_spec": "0 * * * *"}}},
             400, 10013, None),
        ]
        for body, status, code, details in cases:
            st, _, doc = self.d.json("POST", "/api/v1/jobs", body)
            self.assertEqual(st, status, (body, doc))
            self.assertEqual(doc["code"], code, (body, doc))
            if details:
                self.assertEqual(doc["details"], details)
        st, _, doc = self.d.json("POST", "/api/v1/jobs", "{\"job\": {")
        self.assertEqual((st, doc["code"]), (500, 10001))
        st, _, doc = self.d.json("POST", "/api/v1/jobs",
                                 '{"job":{"name":"NOOP","metadata":{"kind":'
                                 '"Generic"},"parameters":{"p":"' +
                                 "x" * 70000 + '"}}}')
        self.assertEqual((st, doc["code"]), (413, 10000))
        # nothing above created stats
        keys = self.r("KEYS", NS + ":job_stats:*")
        for k in keys:
            h = hgetall(self.r, k)
            self.assertNotEqual(h.get("name"), "NOPE")

    def test_field_names_are_case_insensitive(self):
        st, _, doc = self.d.json("POST", "/api/v1/jobs", {
            "Job": {"Name": "NOOP", "Metadata": {"Kind": "Generic"}}})
        self.assertEqual(st, 202, doc)

    def test_unique_pause_and_stop_pending(self):
        self.r("SET", NS + ":jobs:SLEEPER:paused", "1")
        try:
            p = {"ms": 10, "tag": "u<1>"}
            st, _, a = submit(self.d, "SLEEPER", p, unique=True)
            self.assertEqual(st, 202, a)
            ukey = NS + ':unique:SLEEPER:{"ms":10,"tag":"u\\u003c1\\u003e"}\n'
            self.assertEqual(self.r("GET", ukey), "1")
            self.assertTrue(3600 * 23 < self.r("TTL", ukey) <= 86400)
            n_before = len(self.r("KEYS", NS + ":job_stats:*"))
            st, _, dup = submit(self.d, "SLEEPER", p, unique=True)
            self.assertEqual(st, 500)
            self.assertEqual(dup["code"], 10003)
            self.assertEqual(dup["details"], "job 'SLEEPER' can not be "
                             "enqueued, please check the job metatdata")
            self.assertEqual(len(self.r("KEYS", NS + ":job_stats:*")),
                             n_before)
            # paused: stays queued. Nothing to wait for: give the idle
            # workers more than one fetch cycle (at most 1 s) to pick it up
            time.sleep(1.2)
            self.assertEqual(job(self.d, a["job"]["id"])["status"], "Pending")
            # a stopped Pending job stays queued and no-ops when dequeued
            b = submit_ok(self.d, "SLEEPER", {"ms": 5000})
            self.assertEqual(stop_job(self.d, b), 204)
            self.assertEqual(job(self.d, b)["status"], "Stopped")
        finally:
            self.r("DEL", NS + ":jobs:SLEEPER:paused")
        wait_status(self.d, a["job"]["id"], "Success")
        self.assertIsNone(self.r("GET", ukey))

        def sleeper_drained():  # queued and in-progress lists empty
            return self.r("LLEN", NS + ":jobs:SLEEPER") == 0 and all(
                self.r("LLEN", k) == 0 for k in
                self.r("KEYS", NS + ":jobs:SLEEPER:*:inprogress"))
        wait_for(sleeper_drained, what="the stopped job dequeued")
        self.assertEqual(job(self.d, b)["status"], "Stopped")
        st, _, _ = submit(self.d, "SLEEPER", p, unique=True)
        self.assertEqual(st, 202)

    def test_stop_scheduled_running_final_unknown(self):
        jid = submit_ok(self.d, "NOOP", {}, kind="Scheduled", delay=100)
        self.assertEqual(stop_job(self.d, jid), 204)
        self.assertEqual(job(self.d, jid)["status"], "Stopped")
        for m in self.r("ZRANGE", NS + ":scheduled", 0, -1):
            self.assertNotEqual(json.loads(m)["id"], jid)
        # running
        jid = submit_ok(self.d, "SLEEPER", {"ms": 60000})
        wait_status(self.d, jid, "Running")
        t0 = time.monotonic()
        self.assertEqual(stop_job(self.d, jid), 204)
        # the worker frees up: its observation hash disappears
        wait_run_ended(self.r, jid, timeout=10)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(job(self.d, jid)["status"], "Stopped")
        # final: no-op 204
        self.assertEqual(stop_job(self.d, jid), 204)
        st, _, doc = self.d.json("POST", "/api/v1/jobs/" + "0" * 24,
                                 {"action": "stop"})
        self.assertEqual((st, doc["code"], doc["details"]),
                         (404, 10010, "0" * 24))
        st, _, doc = self.d.json("POST", "/api/v1/jobs/" + jid,
                                 {"action": "retry"})
        self.assertEqual((st, doc["code"], doc["details"]),
                         (501, 10008, "command: retry"))
        st, _, doc = self.d.json("POST", "/api/v1/jobs/" + jid, "{nope")
        self.assertEqual((st, doc["code"]), (500, 10001))
        st, _, doc = self.d.json("GET", "/api/v1/jobs/" + "f" * 24)
        self.assertEqual((st, doc["code"]), (404, 10010))

    def test_ignore_stop_is_reported_not_killed(self):
        jid = submit_ok(self.d, "IGNORE_STOP", {"ms": 3500})
        wait_status(self.d, jid, "Running")
        stop_job(self.d, jid)
        wait_log(self.d, "ignores stop", timeout=10)
        # the run is not killed: it returns on its own, and its end does
        # not overwrite Stopped
        self.assertEqual(job(self.d, jid)["status"], "Stopped")
        wait_run_ended(self.r, jid, timeout=10)
        self.assertEqual(job(self.d, jid)["status"], "Stopped")

    def test_retry_bumps_revision(self):
        counter = os.path.join(self.c.tmp.path, "flaky-counter")
        jid = submit_ok(self.d, "FLAKY", {"fail_times": 1,
                                          "counter_file": counter})
        first = wait_status(self.d, jid, "Error")
        # skip the back-off: make the retry due now
        (m,) = wait_for(lambda: make_retries_due(self.r, jid),
                        what="retry entry")
        self.assertEqual(json.loads(m)["fails"], 1)
        done = wait_status(self.d, jid, "Success", timeout=15)
        self.assertGreater(done["revision"], first["revision"] - 1)
        self.assertEqual(os.path.getsize(counter), 2)

    def test_list_routes(self):
        submit(self.d, "NOOP", {}, kind="Scheduled", delay=500)
        st, h, doc = self.d.json("GET", "/api/v1/jobs?page_size=1000")
        self.assertEqual(st, 200)
        self.assertIn("Next-Cursor", h)
        self.assertIsInstance(doc, list)
        # Harbor's shape: each element {"job":{...}} (its Stats)
        self.assertTrue(all(list(e) == ["job"] and "id" in e["job"]
                            for e in doc), doc)
        st, h, doc = self.d.json("GET", "/api/v1/jobs?kind=Scheduled")
        self.assertEqual(st, 200)
        self.assertGreaterEqual(int(h["Total-Count"]), 1)
        self.assertTrue(all(e["job"]["status"] == "Scheduled" for e in doc))
        st, h, doc = self.d.json("GET", "/api/v1/jobs?kind=Scheduled"
                                 "&page_number=999")
        self.assertEqual((st, doc), (200, []))

    def test_dashboard_conformance(self):
        """Reads Redis exactly as Harbor core's dashboard does (12.4)."""
        st, _, cfg = self.d.json("GET", "/api/v1/config")
        ns = "{%s}" % cfg["redis_pool_config"]["Namespace"]
        pools = self.r("SMEMBERS", ns + ":worker_pools")
        self.assertTrue(pools)
        worker_ids = []
        for p in pools:
            h = hgetall(self.r, ns + ":worker_pools:" + p)
            for f in ["heartbeat_at", "started_at", "concurrency", "pid"]:
                int(h[f])
            self.assertTrue(h["host"])
            worker_ids += h["worker_ids"].split(",")
        jid = submit_ok(self.d, "SLEEPER", {"ms": 1500})
        wait_status(self.d, jid, "Running")
        busy = [hgetall(self.r, ns + ":worker:" + w) for w in worker_ids]
        busy = [b for b in busy if b]
        mine = [b for b in busy if b["job_id"] == jid]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["job_name"], "SLEEPER")
        int(mine[0]["started_at"])
        self.assertEqual(json.loads(mine[0]["args"]), {"ms": 1500})
        self.assertTrue(0 < self.r("TTL", ns + ":worker:" + [
            w for w in worker_ids
            if hgetall(self.r, ns + ":worker:" + w).get("job_id") == jid][0])
            <= 24 * 3600)
        known = self.r("SMEMBERS", ns + ":known_jobs")
        for t in ["DEMO", "NOOP", "SLEEPER"]:
            self.assertIn(t, known)
        # queue latency read: LINDEX -1 of a paused queue is parseable
        self.r("SET", ns + ":jobs:NOOP:paused", "1")
        try:
            st, _, q = submit(self.d, "NOOP", {"k": "v"})
            self.assertEqual(self.r("LLEN", ns + ":jobs:NOOP"), 1)
            msg = json.loads(self.r("LINDEX", ns + ":jobs:NOOP", -1))
            self.assertEqual(msg["id"], q["job"]["id"])
            self.assertEqual(msg["name"], "NOOP")
            self.assertLessEqual(abs(msg["t"] - time.time()), 5)
            self.assertEqual(msg["args"], {"k": "v"})
            self.assertEqual(list(msg), ["name", "id", "t", "args"])
        finally:
            self.r("DEL", ns + ":jobs:NOOP:paused")
        wait_status(self.d, q["job"]["id"], "Success")


class ConcurrencyAcrossDaemons(unittest.TestCase):
    def test_max_concurrency_across_two_daemons(self):
        with Cluster(plugins(sleeper_conc=1)) as c:
            a = c.start("a")
            b = c.start("b")
            r = c.client()
            ids = [submit_ok(a if i % 2 else b, "SLEEPER", {"ms": 700, "i": i})
                   for i in range(4)]
            peak = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                running = sum(1 for j in ids
                              if job(a, j)["status"] == "Running")
                peak = max(peak, running)
                lock = int(r("GET", NS + ":jobs:SLEEPER:lock") or 0)
                self.assertLessEqual(lock, 1)
                if all(job(a, j)["status"] == "Success" for j in ids):
                    break
                time.sleep(0.05)
            self.assertEqual(peak, 1)
            for j in ids:
                self.assertEqual(job(b, j)["status"], "Success")
            pools = r("SMEMBERS", NS + ":worker_pools")
            self.assertEqual(len(pools), 2)
            r.close()


class CrashRecovery(unittest.TestCase):
    def test_kill_9_loses_no_job(self):
        with Cluster(plugins()) as c:
            a = c.start("a")
            r = c.client()
            (pool,) = r("SMEMBERS", NS + ":worker_pools")
            jid = submit_ok(a, "SLEEPER", {"ms": 2500})
            first = wait_status(a, jid, "Running")
            c.kill(a)
            # the message sits in the dead pool's in-progress list
            inprog = [k for k in r("KEYS", NS + ":jobs:SLEEPER:*:inprogress")
                      if r("LLEN", k) > 0]
            self.assertEqual(len(inprog), 1)
            # a pool is dead once its heartbeat is 10 s old; rather than
            # wait for that (and for the next 30 s recovery pass), date
            # the dead pool's last heartbeat back a minute, as if it had
            # died that long ago: b's first recovery pass takes it over
            key = NS + ":worker_pools:" + pool
            beat = int(r("HGET", key, "heartbeat_at"))
            r("HSET", key, "heartbeat_at", beat - 60)
            b = c.start("b")
            # a job running when its daemon died counts as a failed
            # attempt (issue 11): it comes back as a retry, due at once
            # the first time; the enqueuer may move it to the queue
            # before a poll sees it, so a run on b counts as well
            def retried():
                if make_retries_due(r, jid):
                    return True
                return job(b, jid)["status"] == "Success"
            wait_for(retried, timeout=20, what="the retry of the killed run")
            done = wait_status(b, jid, "Success", timeout=40)
            self.assertGreater(done["revision"], first["revision"] - 1)
            self.assertGreaterEqual(done["revision"], first["update_time"])
            self.assertEqual(r("LLEN", inprog[0]), 0)
            self.assertEqual(r("GET", NS + ":jobs:SLEEPER:lock"), "0")
            self.assertRegex(b.log(), r"is dead \((no heartbeat for more than 10 s|its process on this host is gone)\)")
            r.close()


class RedisDownDuringSubmit(unittest.TestCase):
    def test_submit_with_redis_down(self):
        with Cluster(plugins()) as c:
            d = c.start("a")
            c.redis.stop()
            st, _, doc = submit(d, "NOOP", {})
            self.assertEqual(st, 500)
            self.assertEqual(doc["code"], 10003)
            self.assertIn("redis", doc["details"].lower())
            self.assertIsNone(d.proc.poll())
            c.redis.start()
            wait_for(lambda: submit(d, "NOOP", {})[0] == 202, timeout=20,
                     step=0.2, what="submit after redis is back")
            jid = submit_ok(d, "NOOP", {})
            wait_status(d, jid, "Success", timeout=20)


class WakeupLatency(unittest.TestCase):
    def test_idle_pool_starts_job_within_milliseconds(self):
        with Cluster(plugins()) as c:
            d = c.start("a")
            # What is measured is the start from idle: a worker finding
            # nothing backs off 10 ms, 100 ms, then blocks (1 s waits) on
            # the wake-up list. Nothing shows that state, so let the pool
            # sit idle well past the ramp before each submission.
            time.sleep(1.0)
            lat = []
            for _ in range(5):
                jid = submit_ok(d, "NOOP", {})
                t_sub = time.time()
                wait_status(d, jid, "Success", timeout=10)
                lat.append(time.time() - t_sub)
                time.sleep(0.4)
            # generous bound; the benchmark reports the real figure
            self.assertLess(sorted(lat)[2], 0.5, lat)


if __name__ == "__main__":
    unittest.main()
