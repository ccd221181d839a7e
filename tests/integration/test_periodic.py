"""Periodic jobs over real HTTP and a real Redis (spec 2.5, 2.7, 2.9, 8):
a seconds-level policy runs its executions on time with ids
<policy>@<epoch> and Scheduled-kind stats; the policy and the scheduled
messages are byte-identical to what Go writes; the executions route pages
with Total-Count and its quirks; bad cron specs are refused with robfig's
messages; stop unschedules (no new runs, pending executions Stopped); and
two berthd instances on one Redis never run an execution twice (counted
with the STAMP plugin)."""
import os
import re
import time
import unittest

from harness import (HEX24, NS, Cluster, executions, hgetall, job,
                     read_stamps, scheduled_of, stop_job, submit_periodic,
                     wait_for)


def plugins(stamp_file):
    return """  - name: DEMO
    file: demo.so
    max_fails: 3
    max_concurrency: 1
    priority: 1
    settings:
      long_wait_seconds: 1
  - name: NOOP
    file: engine.so
  - name: STAMP
    file: stamp.so
    settings:
      out_file: "%s"
""" % stamp_file


def stamps_in(directory):
    return os.path.join(directory, "stamps.txt")


class PeriodicTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(lambda t: plugins(stamps_in(t)))
        cls.d = cls.c.start()
        cls.r = cls.c.client()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()

    def test_policy_runs_on_time(self):
        d, r = self.d, self.r
        t_submit = int(time.time())
        st, _, doc = submit_periodic(d, "NOOP", "*/2 * * * * *",
                                     params={"k": "v<&>", "n": 2.5})
        self.assertEqual(st, 202, doc)
        p = doc["job"]
        pid = p["id"]
        self.assertRegex(pid, HEX24)
        self.assertEqual(p["kind"], "Periodic")
        self.assertEqual(p["status"], "Scheduled")
        self.assertIs(p["unique"], False)
        self.assertEqual(p["cron_spec"], "*/2 * * * * *")
        self.assertEqual(p["ref_link"], "/api/v1/jobs/" + pid)
        self.assertNotIn("revision", p)
        self.assertTrue(t_submit <= p["numeric_policy_id"] <= t_submit + 20)

        # the policy member, byte for byte, at its numeric id
        n = p["numeric_policy_id"]
        members = r("ZRANGEBYSCORE", NS + ":period:policies", n, n)
        self.assertEqual(members, [
            '{"id":"%s","job_name":"NOOP","cron_spec":"*/2 * * * * *",'
            '"job_params":{"k":"v\\u003c\\u0026\\u003e","n":2.5}}' % pid])
        self.assertEqual(hgetall(r, NS + ":job_stats:" + pid)["kind"],
                         "Periodic")

        # pending messages: Go's bytes, t = run epoch, every 2 s
        pend = scheduled_of(r, pid)
        self.assertGreaterEqual(len(pend), 110)
        for score, raw in pend:
            self.assertEqual(score % 2, 0)
            self.assertEqual(raw, '{"name":"NOOP","id":"%s","t":%d,"args":'
                             '{"_job_kind_periodic_":"%d","k":'
                             '"v\\u003c\\u0026\\u003e","n":2.5}}'
                             % (pid, score, score))

        # three executions run within 8 s, each on time
        def done():
            st, hdrs, doc = executions(d, pid, "?page_size=200")
            ok = [e for e in (doc or []) if e["status"] == "Success"]
            return ok if len(ok) >= 3 else None
        ok = wait_for(done, timeout=10, step=0.2, what="3 executions")
        for e in ok:
            m = re.match(r"^%s@(\d+)$" % pid, e["id"])
            self.assertTrue(m, e["id"])
            self.assertEqual(int(m.group(1)), e["run_at"])
            self.assertEqual(e["kind"], "Scheduled")
            self.assertEqual(e["name"], "NOOP")
            self.assertEqual(e["upstream_job_id"], pid)
            self.assertEqual(e["cron_spec"], "*/2 * * * * *")
            self.assertEqual(e["parameters"], {"k": "v<&>", "n": 2.5})
            self.assertGreaterEqual(e["update_time"], e["run_at"])
            self.assertLessEqual(e["update_time"], e["run_at"] + 4)
            # finished: score -1 in the executions zset
            self.assertEqual(r("ZSCORE", NS + ":executions:" + pid,
                               e["id"]), "-1")

        # the listing: newest first, Total-Count, paging, quirks
        st, hdrs, doc = executions(d, pid, "?page_number=1&page_size=5")
        self.assertEqual(st, 200)
        total = int(hdrs["Total-Count"])
        self.assertGreaterEqual(total, 110)
        self.assertEqual(len(doc), 5)
        run_ats = [e["run_at"] for e in doc]
        self.assertEqual(run_ats, sorted(run_ats, reverse=True))
        st, hdrs, doc = executions(d, pid, "?non_dead_only=true&page_size=3")
        self.assertEqual(st, 200)
        self.assertEqual(len(doc), 3)
        self.assertTrue(all(e["status"] == "Scheduled" for e in doc))
        self.assertLess(int(hdrs["Total-Count"]), total)
        st, hdrs, body = d.request(
            "GET", "/api/v1/jobs/%s/executions?non_dead_only=false" % pid)
        self.assertEqual((st, body, hdrs["Total-Count"]), (200, b"null", "0"))
        st, hdrs, body = d.request(
            "GET", "/api/v1/jobs/%s/executions?page_number=100000" % pid)
        self.assertEqual((st, body), (200, b"null"))
        self.assertEqual(int(hdrs["Total-Count"]), total)

        st, _, _ = d.request("POST", "/api/v1/jobs/" + pid,
                             {"action": "stop"})
        self.assertEqual(st, 204)

    def test_executions_errors(self):
        d = self.d
        st, _, doc = executions(d, "0123456789abcdef01234567")
        self.assertEqual((st, doc["code"]), (404, 10010))
        st, _, doc = d.json("POST", "/api/v1/jobs", {"job": {
            "name": "NOOP", "metadata": {"kind": "Generic"}}})
        self.assertEqual(st, 202)
        st, _, doc = executions(d, doc["job"]["id"])
        self.assertEqual((st, doc["code"]), (500, 10015))
        self.assertEqual(doc["details"], "only periodic job has executions: "
                         "Generic kind is received")

    def test_bad_submissions(self):
        d = self.d
        cases = [
            ("* * * * *", "'cron_spec' is not correctly set: * * * * *: "
             "expected exactly 6 fields, found 5: [* * * * *]"),
            ("@daily", "'cron_spec' is not correctly set: @daily: parser "
             "does not accept descriptors: @daily"),
            ("0 0 0 * * 7", "'cron_spec' is not correctly set: 0 0 0 * * 7: "
             "end of range (7) above maximum (6): 7"),
            ("TZ=Mars/Base * * * * * *", "'cron_spec' is not correctly "
             "set: TZ=Mars/Base * * * * * *: provided bad location "
             "Mars/Base: unknown time zone Mars/Base"),
        ]
        for cron, details in cases:
            st, _, doc = submit_periodic(d, "NOOP", cron)
            self.assertEqual((st, doc["code"], doc["details"]),
                             (400, 10013, details))
        st, _, doc = submit_periodic(d, "NOOP", "")
        self.assertEqual((st, doc["details"]), (400, "'cron_spec' must be "
                                                "specified for the Periodic "
                                                "job"))
        st, _, doc = submit_periodic(d, "NO_SUCH", "* * * * * *")
        self.assertEqual((st, doc["details"]),
                         (400, "job with name 'NO_SUCH' is unknown"))
        st, _, doc = submit_periodic(d, "NOOP", "* * * * * *",
                                     hook="http://core:port/x")
        self.assertEqual((st, doc["code"]), (500, 10003))
        self.assertEqual(doc["details"], "bad web hook URL: "
                         "http://core:port/x")
        # a zone prefix and a far-away schedule are fine
        st, _, doc = submit_periodic(
            d, "NOOP", "TZ=Europe/Berlin 0 0 3 1 jan ?")
        self.assertEqual(st, 202, doc)
        self.assertEqual(scheduled_of(self.r, doc["job"]["id"]), [])
        st, _, _ = d.request("POST", "/api/v1/jobs/" + doc["job"]["id"],
                             {"action": "stop"})
        self.assertEqual(st, 204)

    def test_stop_unschedules(self):
        d, r = self.d, self.r
        st, _, doc = submit_periodic(d, "NOOP", "* * * * * *")
        self.assertEqual(st, 202, doc)
        pid = doc["job"]["id"]
        n = doc["job"]["numeric_policy_id"]

        def ran():
            st, _, doc = executions(d, pid, "?page_size=300")
            return any(e["status"] == "Success" for e in doc or [])
        wait_for(ran, timeout=10, step=0.2, what="a first execution")

        st, _, body = d.request("POST", "/api/v1/jobs/" + pid,
                                {"action": "stop"})
        self.assertEqual((st, body), (204, b""))
        self.assertEqual(job(d, pid)["status"], "Stopped")
        self.assertEqual(r("ZCOUNT", NS + ":period:policies", n, n), 0)
        self.assertEqual(scheduled_of(r, pid), [])
        st, _, doc = executions(d, pid, "?page_size=300")
        statuses = {e["status"] for e in doc}
        self.assertLessEqual(statuses, {"Success", "Stopped"})
        self.assertIn("Stopped", statuses)
        successes = {e["id"] for e in doc if e["status"] == "Success"}
        # nothing runs any more: two periods of the every-second policy
        time.sleep(2)
        st, _, doc = executions(d, pid, "?page_size=300")
        self.assertEqual({e["id"] for e in doc if e["status"] == "Success"},
                         successes)
        # again: still 204; an unknown id: 404
        st, _, _ = d.request("POST", "/api/v1/jobs/" + pid,
                             {"action": "stop"})
        self.assertEqual(st, 204)
        st, _, doc = d.json("POST", "/api/v1/jobs/ffffffffffffffffffffffff",
                            {"action": "stop"})
        self.assertEqual((st, doc["code"]), (404, 10010))

        # stats gone but the policy is still there: found and removed
        st, _, doc = submit_periodic(d, "NOOP", "0 0 0 1 1 *")
        self.assertEqual(st, 202)
        pid2, n2 = doc["job"]["id"], doc["job"]["numeric_policy_id"]
        r("DEL", NS + ":job_stats:" + pid2)
        st, _, _ = d.request("POST", "/api/v1/jobs/" + pid2,
                             {"action": "stop"})
        self.assertEqual(st, 204)
        self.assertEqual(r("ZCOUNT", NS + ":period:policies", n2, n2), 0)


class TwoInstancesTests(unittest.TestCase):
    def test_no_execution_runs_twice(self):
        with Cluster(lambda t: plugins(stamps_in(t))) as c:
            a = c.start("a")
            b = c.start("b")
            r = c.client()
            st, _, doc = submit_periodic(a, "STAMP", "* * * * * *")
            self.assertEqual(st, 202, doc)
            pa = doc["job"]["id"]
            st, _, doc = submit_periodic(b, "STAMP", "*/2 * * * * *")
            self.assertEqual(st, 202, doc)
            pb = doc["job"]["id"]
            before = len(scheduled_of(r, pa))
            self.assertGreaterEqual(before, 235)
            # make b run a full enqueue round over the same window a
            # materialised: forget the round timestamp and restart b
            r("DEL", NS + ":last_periodic_enqueue_h")
            self.assertEqual(b.stop(), 0, b.log()[-4000:])
            b.start()
            wait_for(lambda: r("GET", NS + ":last_periodic_enqueue_h"),
                     timeout=10, what="b's enqueue round")
            pend = scheduled_of(r, pa)
            self.assertEqual(len(pend), len({s for s, _ in pend}))
            self.assertLessEqual(len(pend), 240)

            def runs(pid):
                return [s for s in read_stamps(stamps_in(c.path))
                        if s.startswith(pid + "@")]
            # both daemons compete for the executions meanwhile
            wait_for(lambda: len(set(runs(pa))) >= 5 and
                     len(set(runs(pb))) >= 2, timeout=15, step=0.2,
                     what="5 runs of a's policy and 2 of b's")
            for pid in (pa, pb):
                self.assertEqual(stop_job(a, pid), 204)
            # a second run of one of the last executions would stamp within
            # a moment of the first (both daemons see it due at once)
            time.sleep(1)
            runs_a, runs_b = runs(pa), runs(pb)
            self.assertEqual(len(runs_a), len(set(runs_a)), runs_a)
            self.assertEqual(len(runs_b), len(set(runs_b)), runs_b)
            # every run is an execution the executions route knows
            st, _, doc = executions(a, pa, "?page_size=400")
            known = {e["id"] for e in doc}
            self.assertLessEqual(set(runs_a), known)
            r.close()


if __name__ == "__main__":
    unittest.main()
