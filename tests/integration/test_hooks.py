"""Status hooks over real HTTP (spec 7): a Python receiver on 127.0.0.1
port 0 in a thread records every POST and can fail, delay or go away.

Covered: the Generic job sequence Running -> check-ins -> Success with the
payload of spec 7.2 (key order, revision, metadata) and no Content-Type or
Authorization header; DEMO check-ins with increasing check_in_at; stop
sends Stopped; a receiver failing the first N calls still ends delivered;
a receiver that always fails neither slows other jobs nor gets more than
max_attempts (10) attempts per event; pending hooks survive a daemon
restart (receiver down, SIGTERM, receiver up, new daemon on the same
Redis); a hook whose events were lost with a killed daemon is re-fired by
the next daemon's reaper and ACKed; the final ACK is the final status under random delays; jobs without a
hook leave NS:job_track:inprogress as soon as they end (no ACK can come).

The daemon runs with BERTH_HOOK_RETRY_SCALE=0.01 (back-off waits x0.01)
except in the restart test, which needs real waits."""
import json
import signal
import time
import unittest

from harness import (NS, Cluster, ack, ack_status, hgetall, job,
                     pending_hook_events, stop_job, submit_ok, wait_for,
                     wait_status)
from receivers import HookReceiver

FAST = {"BERTH_HOOK_RETRY_SCALE": "0.01"}
MAX_ATTEMPTS = 10  # the daemon's bound per event
PLUGINS = """  - name: DEMO
    file: demo.so
    max_fails: 1
    settings:
      long_wait_seconds: 0
  - name: NOOP
    file: engine.so
  - name: SLEEPER
    file: engine.so
"""


class HookTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rx = HookReceiver()
        cls.c = Cluster(PLUGINS)
        cls.d = cls.c.start("a", env=FAST)
        cls.r = cls.c.client()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()
        cls.rx.down()

    def test_generic_sequence_payload_and_checkins(self):
        path = "/service/notifications/tasks/1"
        jid = submit_ok(self.d, "DEMO", {"image": "demo-1"},
                        hook=self.rx.url(path))
        wait_status(self.d, jid, "Success", timeout=30)
        wait_for(lambda: len(self.rx.got(path)) >= 4 and
                 ack_status(self.r, jid) == "Success",
                 timeout=10, what="4 hooks and the final ack")
        got = self.rx.got(path)
        self.assertEqual([(q["doc"]["status"], q["doc"].get("check_in"))
                          for q in got],
                         [("Running", None),
                          ("Running", "progress data: %30"),
                          ("Running", "progress data: %60"),
                          ("Success", None)])
        stats = job(self.d, jid)
        for q in got:
            self.assertEqual(q["code"], 200)
            self.assertNotIn("content-type", q["raw_headers"])
            self.assertNotIn("authorization", q["raw_headers"])
            doc = json.loads(q["body"])
            keys = list(doc)
            want = ["job_id", "status"] + \
                (["check_in"] if "check_in" in doc else []) + ["metadata"]
            self.assertEqual(keys, want)
            self.assertEqual(doc["job_id"], jid)
            md = doc["metadata"]
            self.assertEqual(list(md)[:5],
                             ["id", "status", "name", "kind", "unique"])
            self.assertEqual(md["id"], jid)
            self.assertEqual(md["status"], doc["status"])
            self.assertEqual(md["name"], "DEMO")
            self.assertEqual(md["kind"], "Generic")
            self.assertIs(md["unique"], False)
            self.assertEqual(md["ref_link"], "/api/v1/jobs/" + jid)
            self.assertEqual(md["web_hook_url"], self.rx.url(path))
            self.assertEqual(md["parameters"], {"image": "demo-1"})
            self.assertEqual(md["revision"], stats["revision"])
            self.assertEqual(md["enqueue_time"], stats["enqueue_time"])
            self.assertGreaterEqual(md["update_time"], md["enqueue_time"])
            self.assertNotIn("ack", md)
            if "check_in" in doc:
                self.assertEqual(md["check_in"], doc["check_in"])
        cia = [q["doc"]["metadata"]["check_in_at"] for q in got[1:3]]
        self.assertLess(cia[0], cia[1])
        self.assertEqual(stats["check_in_at"], cia[1])
        # ACK: final status, the run's revision; in-progress entry gone
        a = ack(self.r, jid)
        self.assertEqual((a["status"], a["revision"]),
                         ("Success", stats["revision"]))
        wait_for(lambda: self.r("HGET", NS + ":job_track:inprogress",
                                jid) is None, timeout=5,
                 what="in-progress entry removed")

    def test_stop_sends_stopped(self):
        path = "/stop"
        jid = submit_ok(self.d, "SLEEPER", {"ms": 20000},
                        hook=self.rx.url(path))
        wait_for(lambda: self.rx.got(path), timeout=10, what="Running hook")
        st, _, _ = self.d.json("POST", "/api/v1/jobs/" + jid,
                               {"action": "stop"})
        self.assertEqual(st, 204)
        wait_for(lambda: ("Stopped", None) in self.rx.delivered(path),
                 timeout=10, what="Stopped hook")
        self.assertEqual(self.rx.delivered(path)[0],
                         ("Running", None))
        wait_for(lambda: ack_status(self.r, jid) == "Stopped", timeout=5, what="Stopped ack")

    def test_receiver_failing_first_calls_ends_delivered(self):
        path = "/flaky"
        with self.rx.lock:
            self.rx.fail_first[path] = 3
        jid = submit_ok(self.d, "SLEEPER", {"ms": 1500},
                        hook=self.rx.url(path))
        wait_status(self.d, jid, "Success", timeout=15)
        wait_for(lambda: ("Success", None) in self.rx.delivered(path),
                 timeout=10, what="Success delivered")
        got = self.rx.got(path)
        self.assertEqual([(q["doc"]["status"], q["code"]) for q in got],
                         [("Running", 500)] * 3 + [("Running", 200),
                                                   ("Success", 200)])
        # every retry sends the same snapshot
        self.assertEqual(len({q["body"] for q in got[:4]}), 1)
        wait_for(lambda: ack_status(self.r, jid) == "Success", timeout=5, what="Success ack")

    def test_failing_receiver_does_not_slow_others_and_is_bounded(self):
        dead = "/dead"
        with self.rx.lock:
            self.rx.always_fail.add(dead)
        bad = submit_ok(self.d, "NOOP", {}, hook=self.rx.url(dead))
        lat = []
        for i in range(8):
            p = "/fast/%d" % i
            t0 = time.monotonic()
            jid = submit_ok(self.d, "NOOP", {"i": i}, hook=self.rx.url(p))
            wait_for(lambda: ("Success", None) in self.rx.delivered(p),
                     timeout=10, what="Success of fast job")
            lat.append(self.rx.got(p, 200)[-1]["at"] - t0)
            self.assertEqual(job(self.d, jid)["status"], "Success")
        print("\n  submit -> Success hook while %s fails: max %.0f ms, "
              "mean %.0f ms" % (dead, max(lat) * 1000,
                                sum(lat) / len(lat) * 1000))
        self.assertLess(max(lat), 1.5)
        # the failing receiver gets exactly MAX_ATTEMPTS tries of Success
        wait_for(lambda: len([q for q in self.rx.got(dead)
                              if q["doc"]["status"] == "Success"]) >=
                 MAX_ATTEMPTS, timeout=15, what="the bound")
        # and no more: an 11th attempt would follow within one back-off
        # (at most 60 s, scaled x0.01 here: 0.6 s)
        time.sleep(1.0)
        got = self.rx.got(dead)
        n_success = len([q for q in got if q["doc"]["status"] == "Success"])
        n_running = len([q for q in got if q["doc"]["status"] == "Running"])
        self.assertEqual(n_success, MAX_ATTEMPTS)
        self.assertTrue(1 <= n_running <= MAX_ATTEMPTS, n_running)
        self.assertIn("giving up", self.d.log())
        self.assertIsNone(ack(self.r, bad))
        wait_for(lambda: not any(bad in (v or "") for k in
                                 self.r("KEYS", NS + ":berth:hook_events:*")
                                 for v in self.r("HVALS", k)),
                 timeout=5, what="dropped events removed from Redis")

    def test_final_ack_is_final_status_under_random_delays(self):
        ids = {}
        for i in range(6):
            p = "/jitter/%d" % i
            with self.rx.lock:
                self.rx.jitter[p] = 0.3
                self.rx.fail_first[p] = i % 3   # some first tries fail
            ids[p] = submit_ok(self.d, "DEMO" if i % 2 else "SLEEPER",
                               {"image": "demo-%d" % i} if i % 2 else
                               {"ms": 200, "checkin": "c%d" % i},
                               hook=self.rx.url(p))
        for p, jid in ids.items():
            wait_status(self.d, jid, "Success", timeout=30)
        for p, jid in ids.items():
            wait_for(lambda: ("Success", None) in
                     self.rx.delivered(p), timeout=15,
                     what="Success of " + p)
            got = [q["doc"] for q in self.rx.got(p)]
            # per job: statuses never go back, check-ins in order
            codes = [{"Running": 2, "Success": 3}[g["status"]] for g in got]
            self.assertEqual(codes, sorted(codes), p)
            cias = [g["metadata"]["check_in_at"] for g in got
                    if g.get("check_in")]
            self.assertEqual(cias, sorted(cias), p)
            self.assertEqual(got[-1]["status"], "Success")
            rev = job(self.d, jid)["revision"]
            wait_for(lambda: ack(self.r, jid) == {
                "status": "Success", "revision": rev,
                "check_in_at": job(self.d, jid).get("check_in_at", 0)},
                timeout=5, what="final ack of " + p)
            wait_for(lambda: self.r("HGET", NS + ":job_track:inprogress",
                                    jid) is None, timeout=5,
                     what="in-progress entry removed")


class HooklessTrackTests(unittest.TestCase):
    def test_hookless_final_jobs_leave_the_inprogress_hash(self):
        rx = HookReceiver()
        entries = PLUGINS + """  - name: NORETRY
    file: engine.so
"""
        with Cluster(entries) as c:
            d = c.start("a", env=FAST)
            r = c.client()
            track = NS + ":job_track:inprogress"
            done = [submit_ok(d, "NOOP") for _ in range(100)]
            failed = [submit_ok(d, "NORETRY") for _ in range(3)]
            slow = [submit_ok(d, "SLEEPER", {"ms": 30000})
                    for _ in range(3)]
            for jid in done:
                wait_status(d, jid, "Success")
            for jid in failed:
                wait_status(d, jid, "Error")
            for jid in slow:
                wait_status(d, jid, "Running")
            # still running: tracked
            self.assertEqual(sorted(r("HKEYS", track)), sorted(slow))
            for jid in slow:
                stop_job(d, jid)
            for jid in slow:
                wait_status(d, jid, "Stopped")
            wait_for(lambda: r("HLEN", track) == 0, timeout=10,
                     what="an empty %s" % track)
            # a job with a hook keeps its field until its final status is
            # delivered and ACKed (spec 4.4): the receiver fails first
            rx.always_fail.add("/hooked")
            jid = submit_ok(d, "NOOP", hook=rx.url("/hooked"))
            wait_status(d, jid, "Success")
            wait_for(lambda: any(q["doc"]["status"] == "Success"
                                 for q in rx.got("/hooked")),
                     what="the Success hook")
            self.assertEqual(r("HGET", track, jid), "1")
            with rx.lock:
                rx.always_fail.discard("/hooked")
            wait_for(lambda: ack_status(r, jid) == "Success", timeout=30,
                     what="the final ACK")
            self.assertEqual(r("HLEN", track), 0)
            r.close()
        rx.down()


class HookRestartTests(unittest.TestCase):
    def test_pending_hooks_survive_a_restart(self):
        rx = HookReceiver()
        port = rx.port
        rx.down()                       # nothing listens on the port
        c = Cluster(PLUGINS)
        try:
            r = c.client()
            d1 = c.start("one")
            path = "/restart"
            url = "http://127.0.0.1:%d%s" % (port, path)
            jid = submit_ok(d1, "NOOP", {}, hook=url)
            wait_status(d1, jid, "Success")
            wait_for(lambda: pending_hook_events(r) >= 1 and
                     "hook to " + url in d1.log(), timeout=10,
                     what="a failed, persisted hook")
            self.assertEqual(d1.stop(signal.SIGTERM), 0)
            self.assertGreaterEqual(pending_hook_events(r), 1)
            agents = hgetall(r, NS + ":berth:hook_agents")
            self.assertIn("0", agents.values())   # released at stop
            rx = HookReceiver(port)                 # the receiver comes back
            t0 = time.monotonic()
            d2 = c.start("two")
            wait_for(lambda: rx.got(path, 200), timeout=10,
                     what="delivery by the new daemon")
            took = time.monotonic() - t0
            print("\n  restart -> delivered in %.2f s" % took)
            got = [q["doc"] for q in rx.got(path, 200)]
            self.assertEqual(got[-1]["status"], "Success")
            self.assertEqual(got[-1]["job_id"], jid)
            wait_for(lambda: pending_hook_events(r) == 0, timeout=5,
                     what="hook events removed")
            wait_for(lambda: ack_status(r, jid) == "Success",
                     timeout=5, what="ack after restart")
            self.assertIn("took over", d2.log())
            r.close()
        finally:
            c.close()
            rx.down()

    def test_reaper_refires_a_lost_hook_after_restart(self):
        """A daemon killed with its hook events lost (as when a Go
        instance, which retries in memory only, ran the job): the reaper of
        the next daemon finds the un-ACKed final state and delivers it."""
        rx = HookReceiver()
        port = rx.port
        rx.down()
        c = Cluster(PLUGINS)
        try:
            r = c.client()
            d1 = c.start("one")
            path = "/lost"
            url = "http://127.0.0.1:%d%s" % (port, path)
            jid = submit_ok(d1, "NOOP", {}, hook=url)
            wait_status(d1, jid, "Success")
            wait_for(lambda: pending_hook_events(r) >= 1, timeout=10,
                     what="a failed, persisted hook")
            c.kill(d1)
            for k in r("KEYS", NS + ":berth:hook_events:*") or []:
                r("DEL", k)
            self.assertIsNone(ack(r, jid))
            rx = HookReceiver(port)
            d2 = c.start("two", env={"BERTH_REAPER_INTERVAL_SECONDS": "1"})
            wait_for(lambda: ack_status(r, jid) == "Success",
                     timeout=20, what="ack through the reaper")
            got = [q["doc"] for q in rx.got(path, 200)]
            self.assertEqual(got[-1]["job_id"], jid)
            self.assertEqual(got[-1]["status"], "Success")
            self.assertIn("reaper", d2.log())
            r.close()
        finally:
            c.close()
            rx.down()


if __name__ == "__main__":
    unittest.main()
