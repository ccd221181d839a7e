"""Submit in one Redis round trip (issue 12) and POST /api/v1/jobs/batch,
over real HTTP and a real Redis: the exact layout a single submit writes,
its round trips (INFO stats total_reads_processed), a batch of 1,000 jobs
that all run, per-item results for mixed items, unique and scheduled items,
refused batches that leave nothing behind, and transactions Redis refuses
or half-applies (OOM, a key of the wrong type, Redis down)."""
import http.client
import json
import time
import unittest

from harness import (HEX24, NS, SECRET, Cluster, hgetall, job, submit,
                     submit_ok, wait_for, wait_status)


PLUGINS = """  - name: DEMO
    file: demo.so
    max_fails: 3
    max_concurrency: 1
    priority: 1
    settings:
      long_wait_seconds: 0
  - name: NOOP
    file: engine.so
  - name: SLEEPER
    file: engine.so
"""

BATCH = "/api/v1/jobs/batch"


def item(name, params=None, kind="Generic", delay=None, unique=None,
         cron=None):
    meta = {"kind": kind}
    if delay is not None:
        meta["schedule_delay"] = delay
    if unique is not None:
        meta["unique"] = unique
    if cron is not None:
        meta["cron_spec"] = cron
    j = {"name": name, "metadata": meta}
    if params is not None:
        j["parameters"] = params
    return {"job": j}


def stats_keys(r):
    """The number of job_stats hashes in the namespace."""
    n, cursor = 0, "0"
    while True:
        cursor, keys = r("SCAN", cursor, "MATCH", NS + ":job_stats:*",
                         "COUNT", 1000)
        n += len(keys)
        if cursor == "0":
            return n


def reads(r):
    """INFO stats total_reads_processed (read events on every client)."""
    for line in r("INFO", "stats").splitlines():
        if line.startswith("total_reads_processed:"):
            return int(line.split(":")[1])
    raise AssertionError("no total_reads_processed")


class Paused:
    """NS:jobs:<name>:paused while the block runs: messages stay queued."""

    def __init__(self, r, name):
        self.r, self.key = r, NS + ":jobs:" + name + ":paused"

    def __enter__(self):
        self.r("SET", self.key, "1")

    def __exit__(self, *exc):
        self.r("DEL", self.key)


class BatchTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS)
        cls.d = cls.c.start()
        cls.r = cls.c.client()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()

    def batch(self, body, **kw):
        return self.d.json("POST", BATCH, body, **kw)

    def post_unread(self, path, body):
        """POSTs a body the daemon refuses before reading it: it answers
        and closes while the body is still being sent."""
        c = self.d.conn()
        c.putrequest("POST", path)
        c.putheader("Authorization", "Harbor-Secret " + SECRET)
        c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        try:
            c.send(body)
        except OSError:
            pass
        r = c.getresponse()
        doc = json.loads(r.read())
        c.close()
        return r.status, doc

    def wait_success(self, ids, timeout=60):
        """Every id's stats reach Success (read in Redis, not over HTTP)."""
        left = set(ids)

        def done():
            for jid in list(left):
                st = self.r("HGET", NS + ":job_stats:" + jid, "status")
                if st == "Success":
                    left.discard(jid)
                else:
                    self.assertNotIn(st, ("Error", "Stopped"), jid)
            return not left
        wait_for(done, timeout=timeout, step=0.1,
                 what="%d jobs in Success" % len(left))

    # --- the single route ------------------------------------------------

    def test_single_submit_layout(self):
        """The stats hash (fields in spec 3.3's order), the in-progress
        entry, the message, NS:berth:ready, known_jobs and the wake-up,
        as one submit writes them."""
        with Paused(self.r, "NOOP"):
            st, _, doc = submit(self.d, "NOOP", {"x": 1, "s": "<a/b>"})
            self.assertEqual(st, 202, doc)
            j = doc["job"]
            jid = j["id"]
            self.assertRegex(jid, HEX24)
            self.assertNotIn("revision", j)
            raw = self.r("HGETALL", NS + ":job_stats:" + jid)
            fields = raw[::2]
            h = dict(zip(raw[::2], raw[1::2]))
            self.assertEqual(fields, [
                "id", "name", "kind", "unique", "status", "ref_link",
                "enqueue_time", "run_at", "cron_spec", "web_hook_url",
                "numeric_policy_id", "parameters", "update_time",
                "revision"])
            self.assertEqual(h["id"], jid)
            self.assertEqual(h["name"], "NOOP")
            self.assertEqual(h["kind"], "Generic")
            self.assertEqual(h["unique"], "0")
            self.assertEqual(h["status"], "Pending")
            self.assertEqual(h["ref_link"], "/api/v1/jobs/" + jid)
            self.assertEqual(h["enqueue_time"], str(j["enqueue_time"]))
            self.assertEqual(h["run_at"], "0")
            self.assertEqual(h["cron_spec"], "")
            self.assertEqual(h["web_hook_url"], "")
            self.assertEqual(h["numeric_policy_id"], "0")
            self.assertEqual(h["parameters"],
                             '{"s":"\\u003ca/b\\u003e","x":1}')
            self.assertEqual(h["update_time"], str(j["update_time"]))
            # a fresh id: the revision is the creation time
            self.assertEqual(h["revision"], str(j["enqueue_time"]))
            self.assertEqual(self.r("TTL", NS + ":job_stats:" + jid), -1)
            self.assertEqual(self.r("HGET", NS + ":job_track:inprogress",
                                    jid), "2")
            msgs = self.r("LRANGE", NS + ":jobs:NOOP", 0, -1)
            mine = [m for m in msgs if jid in m]
            self.assertEqual(mine, [
                '{"name":"NOOP","id":"%s","t":%d,'
                '"args":{"s":"\\u003ca/b\\u003e","x":1}}'
                % (jid, j["enqueue_time"])])
            self.assertEqual(self.r("SISMEMBER", NS + ":berth:ready",
                                    "NOOP"), 1)
            self.assertEqual(self.r("SISMEMBER", NS + ":known_jobs",
                                    "NOOP"), 1)
            self.assertLessEqual(self.r("LLEN", NS + ":berth:wakeup"), 1024)
        self.wait_success([jid])

    def test_single_submit_scheduled_layout(self):
        st, _, doc = submit(self.d, "NOOP", {}, kind="Scheduled", delay=1)
        self.assertEqual(st, 202, doc)
        j = doc["job"]
        h = hgetall(self.r, NS + ":job_stats:" + j["id"])
        self.assertEqual(h["status"], "Scheduled")
        self.assertEqual(h["kind"], "Scheduled")
        self.assertEqual(h["run_at"], str(j["run_at"]))
        self.assertNotIn("parameters", h)
        members = self.r("ZRANGEBYSCORE", NS + ":scheduled", j["run_at"],
                         j["run_at"])
        self.assertIn('{"name":"NOOP","id":"%s","t":%d,"args":{}}'
                      % (j["id"], j["enqueue_time"]), members)
        self.wait_success([j["id"]], timeout=20)

    def test_single_submit_is_one_round_trip(self):
        """100 submits on one keep-alive connection cost at most 1.1 read
        events each on Redis. The 4 workers are busy with SLEEPER jobs
        meanwhile and the submitted type is paused, so no worker wakes
        up; what the daemon does on its timers is measured over the same
        time just before and taken off."""
        sleepers = [submit_ok(self.d, "SLEEPER", {"ms": 60000})
                    for _ in range(4)]
        try:
            for jid in sleepers:
                wait_status(self.d, jid, "Running", timeout=20)
            with Paused(self.r, "NOOP"):
                conn = http.client.HTTPConnection("127.0.0.1", self.d.port,
                                                  timeout=30)
                body = json.dumps(item("NOOP", {"k": 1}))
                hdr = {"Authorization": "Harbor-Secret " + SECRET}

                def post():
                    conn.request("POST", "/api/v1/jobs", body=body,
                                 headers=hdr)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.assertEqual(resp.status, 202, data)
                    return json.loads(data)["job"]["id"]
                post()   # the connection and the thread's Redis context
                n = 100
                t0 = time.monotonic()
                r0 = reads(self.r)
                ids = [post() for _ in range(n)]
                r1 = reads(self.r)
                spent = time.monotonic() - t0
                # the same time without submits: the daemon's timers
                time.sleep(spent)
                r2 = reads(self.r)
                conn.close()
                own = 1   # the INFO between r0 and r1
                background = max(0, r2 - r1 - 1)
                per = (r1 - r0 - own - background) / float(n)
                self.assertLessEqual(per, 1.1, (r1 - r0, background))
                print("\n  %.3f Redis read events per submit (%d, "
                      "background %d)" % (per, r1 - r0, background))
                self.assertEqual(len(set(ids)), n)
        finally:
            for jid in sleepers:
                self.d.json("POST", "/api/v1/jobs/" + jid,
                            {"action": "stop"})
        self.wait_success(ids)

    # --- the batch route -------------------------------------------------

    def test_batch_of_1000_runs(self):
        jobs = [item("NOOP", {"i": i}) for i in range(1000)]
        body = json.dumps({"jobs": jobs})
        # larger than max_body_bytes (64 KiB in the test configuration),
        # which the single route keeps
        self.assertGreater(len(body), 65536)
        st, _, doc = self.batch(body)
        self.assertEqual(st, 200, doc if st != 200 else "")
        out = doc["jobs"]
        self.assertEqual(len(out), 1000)
        ids = []
        for i, o in enumerate(out):
            j = o["job"]
            self.assertRegex(j["id"], HEX24)
            self.assertEqual(j["status"], "Pending")
            self.assertEqual(j["parameters"], {"i": i})
            self.assertNotIn("revision", j)
            ids.append(j["id"])
        self.assertEqual(len(set(ids)), 1000)
        self.wait_success(ids)
        st, doc = self.post_unread("/api/v1/jobs", body.encode())
        self.assertEqual(st, 413, doc)

    def test_batch_mixed_items(self):
        before = stats_keys(self.r)
        with Paused(self.r, "NOOP"):
            jobs = [
                item("NOOP", {"a": 1}),
                item("NOPE"),
                item("DEMO", {"image": "x"}),
                item("NOOP", cron="0 * * * * *", kind="Periodic"),
                item("NOOP", [1, 2]),
                5,
                {},
                # the short form: the job object itself
                {"name": "NOOP", "parameters": {"short": True},
                 "metadata": {"kind": "Generic"}},
                item("NOOP", kind="Scheduled"),
                item("DEMO", {"image": "demo-1"}),
            ]
            st, _, doc = self.batch({"jobs": jobs})
            self.assertEqual(st, 200, doc)
            out = doc["jobs"]
            self.assertEqual(len(out), len(jobs))
            ok = [o["job"]["id"] for o in out if "job" in o]
            self.assertEqual(len(ok), 3)
            self.assertEqual(out[0]["job"]["parameters"], {"a": 1})
            self.assertEqual(out[1], {
                "code": 10013, "message": "bad request",
                "details": "job with name 'NOPE' is unknown"})
            self.assertEqual(out[2]["code"], 10013)
            self.assertEqual(out[2]["details"],
                             "expected 'demo *' but got 'x'")
            self.assertEqual(out[3]["code"], 10013)
            self.assertIn("Periodic", out[3]["details"])
            self.assertEqual(out[4]["code"], 10001)
            self.assertEqual(out[5]["code"], 10001)
            self.assertEqual(out[6]["code"], 10013)
            self.assertEqual(out[6]["details"],
                             "empty job request is not allowed")
            self.assertEqual(out[7]["job"]["parameters"], {"short": True})
            self.assertEqual(out[8]["details"],
                             "'schedule_delay' must be specified for "
                             "Scheduled job")
            self.assertEqual(out[9]["job"]["name"], "DEMO")
            # the refused items wrote nothing
            self.assertEqual(stats_keys(self.r), before + 3)
        self.wait_success(ok, timeout=30)

    def test_batch_unique_and_scheduled(self):
        before = stats_keys(self.r)
        with Paused(self.r, "NOOP"):
            jobs = [
                item("NOOP", {"u": 1}, unique=True),
                item("NOOP", {"u": 1}, unique=True),       # duplicate
                item("NOOP", {"u": 2}, unique=True),
                item("NOOP", {"s": 1}, kind="Scheduled", delay=1),
                item("NOOP", {"su": 1}, kind="Scheduled", delay=1,
                     unique=True),
                item("NOOP", {"su": 1}, kind="Scheduled", delay=1,
                     unique=True),                          # duplicate
            ]
            st, _, doc = self.batch({"jobs": jobs})
            self.assertEqual(st, 200, doc)
            out = doc["jobs"]
            for k in (1, 5):
                self.assertEqual(out[k]["code"], 10003, out[k])
                self.assertIn("can not be enqueued", out[k]["details"])
            ok = [o["job"] for o in out if "job" in o]
            self.assertEqual(len(ok), 4)
            self.assertEqual([j["unique"] for j in ok],
                             [True, True, False, True])
            self.assertEqual([j["status"] for j in ok],
                             ["Pending", "Pending", "Scheduled",
                              "Scheduled"])
            for j in ok[2:]:
                self.assertEqual(self.r("ZCOUNT", NS + ":scheduled",
                                        j["run_at"], j["run_at"]) >= 1,
                                 True)
            # the duplicates' stats were removed again
            self.assertEqual(stats_keys(self.r), before + 4)
            self.assertEqual(self.r("HLEN", NS + ":job_track:inprogress")
                             >= 4, True)
        self.wait_success([j["id"] for j in ok], timeout=30)

    def test_batch_refused_whole(self):
        before = stats_keys(self.r)
        llen = self.r("LLEN", NS + ":jobs:NOOP")
        cases = [
            ({"jobs": [item("NOOP")] * 1001}, 400, 10013,
             "a batch holds at most 1000 jobs, got 1001"),
            ({"jobs": []}, 400, 10013, "empty batch is not allowed"),
            ({}, 400, 10013, None),
            ({"jobs": None}, 400, 10013, None),
            ({"jobs": {"a": 1}}, 500, 10001, "'jobs' must be a JSON array"),
            ([item("NOOP")], 500, 10001, None),
            ('{"jobs": [', 500, 10001, None),
            ("", 500, 10001, None),
        ]
        for body, status, code, details in cases:
            st, _, doc = self.batch(body)
            self.assertEqual(st, status, (body, doc))
            self.assertEqual(doc["code"], code, (body, doc))
            if details:
                self.assertEqual(doc["details"], details)
        # past 8 x max_body_bytes: 413 before anything is parsed
        big = json.dumps({"jobs": [item("NOOP", {"pad": "x" * 600})]
                          * 900})
        self.assertGreater(len(big), 8 * 65536)
        st, doc = self.post_unread(BATCH, big.encode())
        self.assertEqual(st, 413, doc)
        self.assertEqual(doc["code"], 10000)
        # no auth, no batch
        st, _, doc = self.batch({"jobs": [item("NOOP")]}, auth=False)
        self.assertEqual(st, 401, doc)
        st, _, doc = self.d.json("GET", BATCH)
        self.assertEqual(st, 404, doc)   # GET /api/v1/jobs/{id}, no job
        self.assertEqual(stats_keys(self.r), before)
        self.assertEqual(self.r("LLEN", NS + ":jobs:NOOP"), llen)

    # --- transactions that do not go through --------------------------------

    def test_transaction_refused_writes_nothing(self):
        """Under maxmemory Redis refuses to queue the writes: EXECABORT,
        and neither the single route nor a batch leaves anything."""
        before = stats_keys(self.r)
        llen = self.r("LLEN", NS + ":jobs:NOOP")
        self.r("CONFIG", "SET", "maxmemory", "1")
        try:
            st, _, doc = submit(self.d, "NOOP", {})
            self.assertEqual(st, 500, doc)
            self.assertEqual(doc["code"], 10003)
            self.assertIn("OOM", doc["details"])
            st, _, doc = self.batch({"jobs": [item("NOOP")] * 3})
            self.assertEqual(st, 500, doc)
            self.assertEqual(doc["code"], 10003)
            self.assertIn("OOM", doc["details"])
        finally:
            self.r("CONFIG", "SET", "maxmemory", "0")
        self.assertEqual(stats_keys(self.r), before)
        self.assertEqual(self.r("LLEN", NS + ":jobs:NOOP"), llen)
        self.assertIsNone(self.d.proc.poll())
        jid = submit_ok(self.d, "NOOP", {})
        self.wait_success([jid])

    def test_command_failing_inside_exec_is_undone(self):
        """A queue key of the wrong type fails its LPUSH inside EXEC: the
        job is refused and its stats are removed again; the other jobs of
        the batch go through."""
        key = NS + ":jobs:SLEEPER"
        before = stats_keys(self.r)
        self.r("SET", NS + ":jobs:SLEEPER:paused", "1")
        self.r("SET", NS + ":jobs:NOOP:paused", "1")
        self.r("DEL", key)
        self.r("SET", key, "not a list")
        try:
            st, _, doc = submit(self.d, "SLEEPER", {"ms": 1})
            self.assertEqual(st, 500, doc)
            self.assertEqual(doc["code"], 10003)
            self.assertIn("WRONGTYPE", doc["details"])
            st, _, doc = self.batch({"jobs": [item("SLEEPER", {"ms": 1}),
                                              item("NOOP", {"w": 1})]})
            self.assertEqual(st, 200, doc)
            out = doc["jobs"]
            self.assertEqual(out[0]["code"], 10003)
            self.assertIn("WRONGTYPE", out[0]["details"])
            ok = out[1]["job"]["id"]
            self.assertEqual(stats_keys(self.r), before + 1)
            self.assertIsNotNone(self.r("HGET", NS + ":job_track:inprogress",
                                        ok))
        finally:
            self.r("DEL", key)
            self.r("DEL", NS + ":jobs:SLEEPER:paused")
            self.r("DEL", NS + ":jobs:NOOP:paused")
        self.wait_success([ok])


class BatchRedisDown(unittest.TestCase):
    def test_batch_with_redis_down(self):
        with Cluster(PLUGINS) as c:
            d = c.start("a")
            c.redis.stop()
            st, _, doc = d.json("POST", BATCH,
                                {"jobs": [item("NOOP")] * 5})
            self.assertEqual(st, 500, doc)
            self.assertEqual(doc["code"], 10003)
            self.assertIn("redis", doc["details"].lower())
            self.assertIsNone(d.proc.poll())
            c.redis.start()

            def back():
                st, _, doc = d.json("POST", BATCH,
                                    {"jobs": [item("NOOP")] * 5})
                return doc if st == 200 else None
            doc = wait_for(back, timeout=20, step=0.2,
                           what="batch after redis is back")
            for o in doc["jobs"]:
                wait_status(d, o["job"]["id"], "Success", timeout=20)
            self.assertEqual(job(d, doc["jobs"][0]["job"]["id"])["status"],
                             "Success")


if __name__ == "__main__":
    unittest.main()
