"""The Operations API (README "Operations API") against a real berthd and a
real Redis: queues (figures, pause/resume in Harbor's paused key, stop all,
`*`), pools of Berth and of a Go instance (a Go-layout heartbeat and worker
observation written by the test), workers, the job list's filters with SCAN
paging over more jobs than a page and Harbor's {"job":...} elements, the
detail view of a job waiting for its retry and of a check-in, the retry and
dead sets with retry/delete of one job and of the whole set, the dead
set's bound (at insert and by the reaper) and its metrics, periodic
policies with their next fire times, the status_hook check at submit, the
errors of every route; and the per-minute metrics history of a fresh
daemon (GET /api/v1/metrics/history) after runs of every final status."""
import http.client
import json
import os
import time
import unittest

from harness import (NS, Cluster, hgetall, job, submit, submit_ok, wait_for,
                     wait_status)

PLUGINS = """  - name: NOOP
    file: engine.so
  - name: SLEEPER
    file: engine.so
  - name: FLAKY
    file: engine.so
    max_fails: 3
  - name: NORETRY
    file: engine.so
"""

DEAD_MAX = 3
CONFIG = ("  dead_max_jobs: %d\n  reaper_interval_seconds: 2\n"
          "metric:\n  enabled: true\n  path: /metrics\n  port: 8080\n"
          % DEAD_MAX)


class OpsApiTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS, config_extra=CONFIG)
        cls.r = cls.c.client()
        cls.port_file = os.path.join(cls.c.path, "metrics_port")
        cls.d = cls.c.start(env={"BERTH_METRICS_PORT": "0",
                                 "BERTH_METRICS_PORT_FILE": cls.port_file})
        wait_for(lambda: os.path.exists(cls.port_file), timeout=15,
                 what="metrics port file")
        with open(cls.port_file) as f:
            cls.mport = int(f.read().strip())

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()

    # --- helpers ---------------------------------------------------------

    def get(self, path):
        st, _, doc = self.d.json("GET", path)
        self.assertEqual(st, 200, (path, doc))
        return doc

    def act(self, method, path, body, status=200):
        st, _, doc = self.d.json(method, path, body)
        self.assertEqual(st, status, (method, path, body, doc))
        return doc

    def error(self, method, path, body, status, code):
        st, _, doc = self.d.json(method, path, body)
        self.assertEqual((st, doc["code"]), (status, code),
                         (method, path, body, doc))
        return doc

    def queue(self, name):
        for q in self.get("/api/v1/queues")["queues"]:
            if q["type"] == name:
                return q
        return None

    def metric(self, name):
        c = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=10)
        try:
            c.request("GET", "/metrics")
            body = c.getresponse().read().decode()
        finally:
            c.close()
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def counter_file(self, name):
        return os.path.join(self.c.path, name)

    def attempts(self, path):
        return os.path.getsize(path) if os.path.exists(path) else 0

    # --- queues -----------------------------------------------------------

    def test_queues_figures_pause_resume(self):
        d, r = self.d, self.r
        self.r("SADD", NS + ":known_jobs", "GOONLY")
        q = self.queue("GOONLY")
        self.assertEqual((q["known"], q["loaded"], q["pending"]),
                         (True, False, 0))
        # pause writes Harbor's key, exactly as the dashboard does
        doc = self.act("PUT", "/api/v1/queues/SLEEPER", {"action": "pause"})
        self.assertEqual(doc, {"action": "pause", "types": ["SLEEPER"]})
        self.assertEqual(r("GET", NS + ":jobs:SLEEPER:paused"), "1")
        ids = [submit_ok(d, "SLEEPER", {"ms": 10}) for _ in range(3)]
        # a message a Go instance enqueued 100 s ago is the oldest
        r("RPUSH", NS + ":jobs:SLEEPER", json.dumps(
            {"name": "SLEEPER", "id": "0" * 24, "t": int(time.time()) - 100,
             "args": {"ms": 10}}))
        submit_ok(d, "NOOP", {}, kind="Scheduled", delay=600)
        q = self.queue("SLEEPER")
        self.assertEqual((q["pending"], q["paused"], q["loaded"],
                          q["known"]), (4, True, True, True), q)
        self.assertGreaterEqual(q["latency_seconds"], 99)
        self.assertEqual((q["in_progress"], q["lock"], q["max_concurrency"]),
                         (0, 0, 0), q)
        self.assertGreaterEqual(self.queue("NOOP")["scheduled"], 1)
        doc = self.get("/api/v1/queues")
        self.assertGreaterEqual(doc["totals"]["scheduled"], 1)
        self.assertIs(doc["counts_partial"], False)
        names = [q["type"] for q in doc["queues"]]
        self.assertEqual(names, sorted(names))
        time.sleep(0.3)   # paused: nothing may start (a claim takes ms)
        self.assertEqual(job(d, ids[0])["status"], "Pending")
        doc = self.act("PUT", "/api/v1/queues/SLEEPER", {"action": "resume"})
        self.assertEqual(doc["types"], ["SLEEPER"])
        self.assertIsNone(r("GET", NS + ":jobs:SLEEPER:paused"))
        for jid in ids:
            wait_status(d, jid, "Success")
        # "*": every known or loaded type
        doc = self.act("PUT", "/api/v1/queues/*", {"action": "pause"})
        self.assertLessEqual({"GOONLY", "NOOP", "SLEEPER", "FLAKY",
                              "NORETRY"}, set(doc["types"]))
        self.assertEqual(r("GET", NS + ":jobs:GOONLY:paused"), "1")
        self.assertTrue(all(q["paused"] for q in
                            self.get("/api/v1/queues")["queues"]))
        self.act("PUT", "/api/v1/queues/*", {"action": "resume"})
        self.assertFalse(any(q["paused"] for q in
                             self.get("/api/v1/queues")["queues"]))
        # errors
        doc = self.error("PUT", "/api/v1/queues/SLEEPER", {"action": "halt"},
                         400, 10013)
        self.assertIn("unknown action 'halt'", doc["details"])
        self.error("PUT", "/api/v1/queues/SLEEPER", "not json", 400, 10013)
        self.error("PUT", "/api/v1/queues/SLEEPER", {"action": 1}, 400, 10013)
        self.error("PUT", "/api/v1/queues/SLEEPER", [], 400, 10013)
        doc = self.error("PUT", "/api/v1/queues/NOSUCH", {"action": "pause"},
                         404, 10010)
        self.assertEqual(doc["details"], "NOSUCH")
        self.assertIsNone(r("GET", NS + ":jobs:NOSUCH:paused"))
        self.error("GET", "/api/v1/queues?x=1", None, 400, 10013)
        st, h, _ = self.d.json("DELETE", "/api/v1/queues/SLEEPER")
        self.assertEqual(st, 405)
        st, _, _ = self.d.json("GET", "/api/v1/queues", auth=False)
        self.assertEqual(st, 401)

    def test_queue_stop_all(self):
        d, r = self.d, self.r
        running = submit_ok(d, "SLEEPER", {"ms": 20000})
        wait_status(d, running, "Running")
        self.act("PUT", "/api/v1/queues/SLEEPER", {"action": "pause"})
        pending = [submit_ok(d, "SLEEPER", {"ms": 10}) for _ in range(5)]
        doc = self.act("PUT", "/api/v1/queues/SLEEPER", {"action": "stop"})
        self.assertEqual(doc, {"action": "stop", "types": ["SLEEPER"],
                               "stopped_pending": 5, "stopped_running": 1})
        self.assertEqual(r("LLEN", NS + ":jobs:SLEEPER"), 0)
        for jid in pending:
            self.assertEqual(job(d, jid)["status"], "Stopped")
        # the running job saw the stop (SLEEPER honours it)
        wait_status(d, running, "Stopped", timeout=10)
        wait_for(lambda: self.queue("SLEEPER")["in_progress"] == 0,
                 what="SLEEPER out of progress")
        self.act("PUT", "/api/v1/queues/SLEEPER", {"action": "resume"})

    # --- pools and workers -----------------------------------------------

    def test_pools_and_workers(self):
        d, r = self.d, self.r
        now = int(time.time())
        go = "8d3e1f00aa11bb22cc33dd44"
        r("SADD", NS + ":worker_pools", go)
        r("HSET", NS + ":worker_pools:" + go, "heartbeat_at", now,
          "started_at", now - 100, "job_names", "IMAGE_SCAN,GARBAGE_COLLECTION",
          "concurrency", 2, "worker_ids", "bbbbbbbbbbbbbbbbbbbbbbbb,"
          "aaaaaaaaaaaaaaaaaaaaaaaa", "host", "harbor-js-0", "pid", 1)
        r("HSET", NS + ":worker:aaaaaaaaaaaaaaaaaaaaaaaa", "job_name",
          "IMAGE_SCAN", "job_id", "c" * 24, "started_at", now - 5,
          "args", '{"repository":"<lib>"}')
        try:
            jid = submit_ok(d, "SLEEPER", {"ms": 3000})
            wait_status(d, jid, "Running")
            pools = {p["pool_id"]: p for p in
                     self.get("/api/v1/pools")["pools"]}
            g = pools[go]
            self.assertEqual(
                (g["host"], g["pid"], g["started_at"], g["heartbeat_at"],
                 g["status"], g["concurrency"], g["job_names"],
                 g["worker_ids"], g["busy"], g["berth"], g["self"]),
                ("harbor-js-0", 1, now - 100, now, "Healthy", 2,
                 ["GARBAGE_COLLECTION", "IMAGE_SCAN"],
                 ["aaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb"],
                 1, False, False))
            (own,) = [p for p in pools.values() if p["self"]]
            self.assertEqual((own["berth"], own["pid"], own["concurrency"],
                              own["status"]),
                             (True, d.proc.pid, 4, "Healthy"))
            self.assertEqual(len(own["worker_ids"]), 4)
            self.assertLessEqual({"NOOP", "SLEEPER", "FLAKY", "NORETRY"},
                                 set(own["job_names"]))
            self.assertGreaterEqual(own["busy"], 1)
            # the Go pool's workers
            doc = self.get("/api/v1/pools/%s/workers" % go)
            self.assertEqual(doc["pool_id"], go)
            self.assertEqual(doc["workers"], [
                {"worker_id": "aaaaaaaaaaaaaaaaaaaaaaaa", "busy": True,
                 "job_name": "IMAGE_SCAN", "job_id": "c" * 24,
                 "started_at": now - 5, "args": {"repository": "<lib>"}},
                {"worker_id": "bbbbbbbbbbbbbbbbbbbbbbbb", "busy": False}])
            # ours: the worker running the SLEEPER job, and since when
            doc = self.get("/api/v1/pools/%s/workers" % own["pool_id"])
            busy = [w for w in doc["workers"] if w["busy"]]
            mine = [w for w in busy if w["job_id"] == jid]
            self.assertEqual(len(mine), 1, doc)
            self.assertEqual((mine[0]["job_name"], mine[0]["args"]),
                             ("SLEEPER", {"ms": 3000}))
            self.assertLessEqual(abs(mine[0]["started_at"] - time.time()), 10)
            self.error("GET", "/api/v1/pools/%s/workers" % ("f" * 24), None,
                       404, 10010)
            self.error("GET", "/api/v1/pools?all=1", None, 400, 10013)
            wait_status(d, jid, "Success", timeout=10)
        finally:
            r("SREM", NS + ":worker_pools", go)
            r("DEL", NS + ":worker_pools:" + go,
              NS + ":worker:aaaaaaaaaaaaaaaaaaaaaaaa")

    # --- the job list ------------------------------------------------------

    def walk(self, query, page_size):
        """Follows Next-Cursor to the end; returns (elements, requests)."""
        cursor, out, n = "0", [], 0
        while True:
            st, h, doc = self.d.json(
                "GET", "/api/v1/jobs?%s&page_size=%d&cursor=%s"
                % (query, page_size, cursor))
            self.assertEqual(st, 200, doc)
            n += 1
            for e in doc:
                self.assertEqual(list(e), ["job"], e)
            out += [e["job"] for e in doc]
            cursor = h["Next-Cursor"]
            if cursor == "0":
                return out, n
            self.assertLess(n, 2000, "the walk does not end")

    def test_jobs_list_filters_paging(self):
        d, r = self.d, self.r
        items = [{"job": {"name": "NOOP", "parameters": {"i": i},
                          "metadata": {"kind": "Generic"}}}
                 for i in range(60)]
        doc = self.act("POST", "/api/v1/jobs/batch", {"jobs": items})
        ids = {e["job"]["id"] for e in doc["jobs"]}
        for jid in ids:
            wait_status(d, jid, "Success")
        stopped = submit_ok(d, "NOOP", {}, kind="Scheduled", delay=600)
        self.assertEqual(self.d.json("POST", "/api/v1/jobs/" + stopped,
                                     {"action": "stop"})[0], 204)
        jobs, n = self.walk("type=NOOP&status=Success", 10)
        got = [j["id"] for j in jobs]
        self.assertEqual(len(got), len(set(got)), "a job listed twice")
        self.assertLessEqual(ids, set(got))
        self.assertTrue(all(j["name"] == "NOOP" and j["status"] == "Success"
                            for j in jobs))
        self.assertGreater(n, 1, "60 jobs fit one page of 10?")
        # a filter that matches one job
        jobs, _ = self.walk("status=Stopped&type=NOOP", 25)
        self.assertIn(stopped, [j["id"] for j in jobs])
        jobs, _ = self.walk("kind=Generic", 50)
        self.assertTrue(jobs and all(j["kind"] == "Generic" for j in jobs))
        self.assertNotIn(stopped, [j["id"] for j in jobs])
        # Harbor's own walk (no filter): one SCAN step per request
        jobs, n = self.walk("non_dead_only=true", 20)
        self.assertLessEqual(ids, {j["id"] for j in jobs})
        # each request looks at a bounded number of keys: a page of 10 with
        # a filter nothing matches still ends with a cursor
        st, h, doc = d.json("GET", "/api/v1/jobs?status=Running&type=NONE"
                            "&page_size=10")
        self.assertEqual((st, doc), (200, []))
        self.assertIn("Next-Cursor", h)
        # errors
        for q in ["foo=1", "status=Done", "kind=Other", "type=",
                  "page_size=5&x"]:
            self.error("GET", "/api/v1/jobs?" + q, None, 400, 10013)

    # --- retries and the detail view -------------------------------------

    def retry_member(self, jid):
        for m, s in zip(*[iter(self.r("ZRANGE", NS + ":retry", 0, -1,
                                      "WITHSCORES"))] * 2):
            if json.loads(m)["id"] == jid:
                return json.loads(m), int(float(s))
        return None

    def test_retries_and_detail(self):
        d, r = self.d, self.r
        counter = self.counter_file("flaky-detail")
        jid = submit_ok(d, "FLAKY", {"fail_times": 5, "counter_file": counter})
        wait_status(d, jid, "Error")
        msg, score = wait_for(lambda: self.retry_member(jid),
                              what="a retry entry")
        # the plain route: Harbor's bytes, no detail
        st, _, plain = d.request("GET", "/api/v1/jobs/" + jid)
        self.assertEqual(st, 200)
        self.assertEqual(list(json.loads(plain)), ["job"])
        self.assertNotIn("check_in", json.loads(plain)["job"])
        st, _, same = d.request("GET", "/api/v1/jobs/%s?detail=false" % jid)
        self.assertEqual(same, plain)
        doc = self.get("/api/v1/jobs/%s?detail=true" % jid)
        self.assertEqual(doc["job"], json.loads(plain)["job"])
        det = doc["detail"]
        self.assertEqual(
            (det["fails"], det["last_error"], det["failed_at"],
             det["next_retry_at"], det["dead"], det["died_at"]),
            (1, "attempt 1 fails on purpose", msg["failed_at"], score, False,
             0))
        self.assertGreater(det["next_retry_at"], time.time() + 5)
        # the retry set's listing
        doc = self.get("/api/v1/retries?page_size=1000&type=FLAKY")
        (it,) = [i for i in doc["items"] if i["job_id"] == jid]
        self.assertEqual((it["name"], it["error"], it["fails"],
                          it["retry_at"], it["failed_at"], it["args"]),
                         ("FLAKY", "attempt 1 fails on purpose", 1, score,
                          msg["failed_at"],
                          {"fail_times": 5, "counter_file": counter}))
        self.assertGreaterEqual(doc["total"], 1)
        # retry one job now: attempt 2 runs (and fails: fails 2)
        doc = self.act("POST", "/api/v1/retries/" + jid, {"action": "retry"})
        self.assertEqual(doc, {"action": "retry", "affected": 1})
        wait_for(lambda: self.attempts(counter) == 2, timeout=10,
                 what="attempt 2")
        wait_for(lambda: (self.retry_member(jid) or ({},))[0].get("fails")
                 == 2, what="the second retry entry")
        self.assertEqual(self.get("/api/v1/jobs/%s?detail=1" % jid)
                         ["detail"]["fails"], 2)
        # delete it: no further attempt
        doc = self.act("POST", "/api/v1/retries/" + jid, {"action": "delete"})
        self.assertEqual(doc["affected"], 1)
        self.assertIsNone(self.retry_member(jid))
        self.error("POST", "/api/v1/retries/" + jid, {"action": "delete"},
                   404, 10010)
        self.error("POST", "/api/v1/retries/" + jid, {"action": "kill"},
                   400, 10013)
        # the whole set: two waiting jobs retried at once, both succeed
        jobs = []
        for i in range(2):
            c = self.counter_file("flaky-all-%d" % i)
            jobs.append(submit_ok(d, "FLAKY", {"fail_times": 1,
                                               "counter_file": c}))
        for j in jobs:
            wait_for(lambda: self.retry_member(j), what="retry entry")
        doc = self.act("POST", "/api/v1/retries", {"action": "retry"})
        self.assertGreaterEqual(doc["affected"], 2)
        for j in jobs:
            wait_status(d, j, "Success", timeout=10)
        # and delete of the whole set
        c = self.counter_file("flaky-del")
        j = submit_ok(d, "FLAKY", {"fail_times": 3, "counter_file": c})
        wait_for(lambda: self.retry_member(j), what="retry entry")
        doc = self.act("POST", "/api/v1/retries", {"action": "delete"})
        self.assertGreaterEqual(doc["affected"], 1)
        self.assertEqual(r("ZCARD", NS + ":retry"), 0)
        self.error("GET", "/api/v1/retries?page_size=0", None, 400, 10013)
        self.error("GET", "/api/v1/retries?sort=1", None, 400, 10013)
        self.error("GET", "/api/v1/jobs/%s?detail=yes" % jid, None, 400,
                   10013)
        self.error("GET", "/api/v1/jobs/%s?x=1" % jid, None, 400, 10013)

    def test_detail_checkin(self):
        d, r = self.d, self.r
        jid = submit_ok(d, "SLEEPER", {"ms": 0, "checkin": "layer 3 of 7"})
        wait_status(d, jid, "Success")
        j = job(d, jid)
        self.assertNotIn("check_in", j)
        self.assertIn("check_in_at", j)
        self.assertEqual(r("HGET", NS + ":job_stats:" + jid, "check_in"),
                         "layer 3 of 7")
        det = self.get("/api/v1/jobs/%s?detail=true" % jid)["detail"]
        self.assertEqual((det["check_in"], det["check_in_at"], det["fails"],
                          det["last_error"], det["next_retry_at"]),
                         ("layer 3 of 7", j["check_in_at"], 0, "", 0))
        self.error("GET", "/api/v1/jobs/%s?detail=true" % ("e" * 24), None,
                   404, 10010)

    # --- the dead set -----------------------------------------------------

    def dead(self):
        return self.get("/api/v1/dead?page_size=1000")

    def test_dead_set(self):
        d, r = self.d, self.r
        r("DEL", NS + ":dead")
        counter = self.counter_file("noretry")
        jid = submit_ok(d, "NORETRY", {"counter_file": counter})
        wait_status(d, jid, "Error")
        wait_for(lambda: self.dead()["total"] == 1, what="a dead entry")
        (it,) = self.dead()["items"]
        self.assertEqual((it["job_id"], it["name"], it["error"], it["fails"]),
                         (jid, "NORETRY", "always fails", 1))
        self.assertLessEqual(abs(it["died_at"] - time.time()), 10)
        self.assertEqual(it["died_at"], it["failed_at"])
        self.assertIsNone(self.retry_member(jid))
        det = self.get("/api/v1/jobs/%s?detail=true" % jid)["detail"]
        self.assertEqual((det["dead"], det["died_at"], det["last_error"],
                          det["next_retry_at"]),
                         (True, it["died_at"], "always fails", 0))
        # retry it: fails cleared, through the retry set, a second run
        doc = self.act("POST", "/api/v1/dead/" + jid, {"action": "retry"})
        self.assertEqual(doc["affected"], 1)
        wait_for(lambda: self.attempts(counter) == 2, timeout=10,
                 what="the retried run")
        wait_for(lambda: self.dead()["total"] == 1, what="dead again")
        self.assertEqual(self.dead()["items"][0]["fails"], 1)
        self.error("POST", "/api/v1/dead/" + "0" * 24, {"action": "retry"},
                   404, 10010)
        # the bound at insert: DEAD_MAX members, the oldest go first, and
        # one older than dead_max_age_seconds goes whatever the count
        now = int(time.time())
        for i in range(4):
            r("ZADD", NS + ":dead", now - 100 - i, json.dumps(
                {"name": "NOOP", "id": "%024x" % (i + 1), "t": now,
                 "args": None, "fails": 4, "err": "old", "failed_at": now}))
        r("ZADD", NS + ":dead", now - 30 * 86400, json.dumps(
            {"name": "NOOP", "id": "f" * 24, "t": now, "args": None}))
        trimmed = self.metric("berth_dead_trimmed_total")
        j2 = submit_ok(d, "NORETRY", {})
        wait_status(d, j2, "Error")
        wait_for(lambda: any(i["job_id"] == j2 for i in self.dead()["items"]),
                 what="the new dead entry")
        doc = self.dead()
        self.assertEqual(doc["total"], DEAD_MAX)
        kept = [i["job_id"] for i in doc["items"]]
        # (the two NORETRY deaths may share a second: any order)
        self.assertEqual((kept[0], set(kept[1:])), ("%024x" % 1, {jid, j2}))
        self.assertGreaterEqual(self.metric("berth_dead_trimmed_total"),
                                trimmed + 4)
        self.assertEqual(self.metric("berth_dead_jobs"), DEAD_MAX)
        # the reaper's pass (every 2 s here) trims by age too
        r("ZADD", NS + ":dead", 1, "not even json")
        self.assertEqual(r("ZCARD", NS + ":dead"), DEAD_MAX + 1)
        wait_for(lambda: r("ZCARD", NS + ":dead") == DEAD_MAX, timeout=10,
                 what="the reaper's trim")
        # retry the whole set: every member leaves for the retry set
        doc = self.act("POST", "/api/v1/dead", {"action": "retry"})
        self.assertEqual(doc["affected"], DEAD_MAX)
        self.assertEqual(r("ZCARD", NS + ":dead"), 0)
        # delete of the whole set (the NORETRY jobs come back first)
        wait_for(lambda: r("ZCARD", NS + ":dead") >= 2, what="dead again")
        doc = self.act("POST", "/api/v1/dead", {"action": "delete"})
        self.assertGreaterEqual(doc["affected"], 2)
        self.assertEqual(r("ZCARD", NS + ":dead"), 0)
        self.error("POST", "/api/v1/dead", {"action": "purge"}, 400, 10013)
        self.error("POST", "/api/v1/dead", "{", 400, 10013)
        self.error("GET", "/api/v1/dead?page=0", None, 400, 10013)

    # --- periodic -----------------------------------------------------------

    def test_periodic_next_runs(self):
        d, r = self.d, self.r
        p1 = submit_ok(d, "NOOP", {"k": "v"}, kind="Periodic",
                       cron="0 0 3 * * *")
        p2 = submit_ok(d, "NOOP", None, kind="Periodic",
                       cron="TZ=Europe/Berlin 0 30 1 * * *")
        r("ZADD", NS + ":period:policies", 1, json.dumps(
            {"id": "a" * 24, "job_name": "NOOP", "cron_spec": "bad cron"}))
        try:
            pol = {p["id"]: p for p in
                   self.get("/api/v1/periodic")["policies"]}
            a, b, bad = pol[p1], pol[p2], pol["a" * 24]
            now = time.time()
            self.assertEqual((a["job_name"], a["cron_spec"], a["job_params"],
                              a["time_zone"]),
                             ("NOOP", "0 0 3 * * *", {"k": "v"}, "UTC"))
            self.assertEqual(a["numeric_id"],
                             job(d, p1)["numeric_policy_id"])
            self.assertEqual(len(a["next_runs"]), 3)
            self.assertTrue(now < a["next_runs"][0] <= now + 86400)
            for t in a["next_runs"]:
                self.assertEqual(t % 86400, 3 * 3600)
            self.assertEqual([y - x for x, y in zip(a["next_runs"],
                                                    a["next_runs"][1:])],
                             [86400, 86400])
            self.assertEqual(b["time_zone"], "Europe/Berlin")
            self.assertEqual(len(b["next_runs"]), 3)
            for t in b["next_runs"]:   # 01:30 Berlin = 23:30 or 00:30 UTC
                self.assertIn(t % 86400, (23 * 3600 + 1800, 1800))
            self.assertIn("error", bad)
            self.assertEqual(bad["next_runs"], [])
            self.error("GET", "/api/v1/periodic?x=1", None, 400, 10013)
        finally:
            r("ZREMRANGEBYSCORE", NS + ":period:policies", 1, 1)
            for p in (p1, p2):
                self.assertEqual(d.request("POST", "/api/v1/jobs/" + p,
                                           {"action": "stop"})[0], 204)

    # --- submit -----------------------------------------------------------

    def test_status_hook_checked_at_submit(self):
        d = self.d
        for bad in ["not a url", "ftp://core/x", "http://", "http:///x",
                    "https://:8080/x", "http://core/a b", "core:8080/x"]:
            st, _, doc = submit(d, "NOOP", {}, hook=bad)
            self.assertEqual((st, doc["code"]), (400, 10013), bad)
            self.assertIn("'status_hook' must be an http or https URL",
                          doc["details"])
        for good in ["http://127.0.0.1:9/service/notifications/tasks/1",
                     "HTTPS://[::1]:9/x", "http://u:p@127.0.0.1:9"]:
            st, _, doc = submit(d, "NOOP", {}, hook=good)
            self.assertEqual(st, 202, (good, doc))
        doc = self.act("POST", "/api/v1/jobs/batch", {"jobs": [
            {"name": "NOOP", "metadata": {"kind": "Generic"},
             "status_hook": "nope"},
            {"name": "NOOP", "metadata": {"kind": "Generic"}}]})
        self.assertEqual(doc["jobs"][0]["code"], 10013)
        self.assertIn("job", doc["jobs"][1])


class MetricsHistoryTests(unittest.TestCase):
    """GET /api/v1/metrics/history on a daemon of its own (its figures
    start at zero), metric.enabled left off: the history is kept anyway."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS)
        try:
            cls.d = cls.c.start()
        except BaseException:
            cls.c.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def history(self, query=""):
        st, h, doc = self.d.json("GET", "/api/v1/metrics/history" + query)
        self.assertEqual(st, 200, doc)
        self.assertEqual(h.get("Cache-Control"), "no-store")
        return doc

    @staticmethod
    def sums(buckets):
        keys = ("submitted", "started", "success", "error", "stopped")
        return {k: sum(b[k] for b in buckets) for k in keys}

    def test_history(self):
        d = self.d
        doc = self.history()
        self.assertEqual(doc["interval_seconds"], 60)
        self.assertLessEqual(abs(doc["now"] - time.time()), 5)
        self.assertEqual(len(doc["buckets"]), 15)   # the default
        ts = [b["t"] for b in doc["buckets"]]
        self.assertEqual(ts, list(range(ts[-1] - 14 * 60, ts[-1] + 1, 60)))
        self.assertEqual(ts[-1], doc["now"] // 60 * 60)
        self.assertEqual(set(doc["buckets"][0]),
                         {"t", "submitted", "started", "success", "error",
                          "stopped"})
        self.assertEqual(self.sums(doc["buckets"]),
                         dict.fromkeys(self.sums([]), 0))
        minute0 = int(time.time()) // 60
        # three successes (one through the batch route), a failure that is
        # not retried, a stopped run, a scheduled job that does not run yet
        # and a refused submit
        ok = [submit_ok(d, "NOOP", {}) for _ in range(2)]
        st, _, batch = d.json("POST", "/api/v1/jobs/batch", {"jobs": [
            {"name": "NOOP", "metadata": {"kind": "Generic"}},
            {"name": "NOSUCH", "metadata": {"kind": "Generic"}}]})
        self.assertEqual(st, 200, batch)
        ok.append(batch["jobs"][0]["job"]["id"])
        self.assertIn("code", batch["jobs"][1])
        bad = submit_ok(d, "NORETRY", {})
        slow = submit_ok(d, "SLEEPER", {"ms": 20000})
        submit_ok(d, "NOOP", {}, kind="Scheduled", delay=600)
        st, _, _ = submit(d, "NOSUCH", {})
        self.assertNotEqual(st, 202)
        for jid in ok:
            wait_status(d, jid, "Success")
        wait_status(d, bad, "Error")
        wait_status(d, slow, "Running")
        self.assertEqual(d.request("POST", "/api/v1/jobs/" + slow,
                                   {"action": "stop"})[0], 204)
        wait_status(d, slow, "Stopped")
        want = {"submitted": 6, "started": 5, "success": 3, "error": 1,
                "stopped": 1}
        # the stop is counted when the run returns (the plugin polls)
        wait_for(lambda: self.sums(self.history("?minutes=60")["buckets"])
                 == want, timeout=10, what="the counts in the history")
        doc = self.history("?minutes=60")
        b = doc["buckets"]
        self.assertEqual(len(b), 60)
        self.assertEqual(b[-1]["t"], doc["now"] // 60 * 60)
        # every run happened within the last two minutes, and in the last
        # bucket when no minute began meanwhile
        self.assertEqual(self.sums(b[-2:]), want)
        if doc["now"] // 60 == minute0:
            self.assertEqual({k: b[-1][k] for k in want}, want)
        self.assertEqual(self.sums(b[:-2]), dict.fromkeys(want, 0))
        self.assertEqual(len(self.history("?minutes=1")["buckets"]), 1)

    def test_errors(self):
        for q in ("?minutes=0", "?minutes=61", "?minutes=x", "?minutes=",
                  "?minutes=1.5", "?minute=5", "?minutes=5&x=1"):
            st, _, doc = self.d.json("GET", "/api/v1/metrics/history" + q)
            self.assertEqual((st, doc["code"]), (400, 10013), (q, doc))
        self.assertIn("minutes must be an integer from 1 to 60",
                      self.d.json("GET", "/api/v1/metrics/history"
                                  "?minutes=0")[2]["details"])
        st, _, _ = self.d.request("GET", "/api/v1/metrics/history",
                                  auth=False)
        self.assertEqual(st, 401)
        st, _, _ = self.d.request("POST", "/api/v1/metrics/history", "{}")
        self.assertEqual(st, 405)


if __name__ == "__main__":
    unittest.main()
