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
the next daemon's reaper and ACKed; the final ACK is the final status under random delays.

The daemon runs with BERTH_HOOK_RETRY_SCALE=0.01 (back-off waits x0.01)
except in the restart test, which needs real waits."""
import http.server
import json
import os
import random
import shutil
import signal
import socket
import threading
import time
import unittest

from harness import (PLUGINS, TEST_PLUGINS, Berthd, RedisServer, TempDir,
                     harbor_config, wait_for)

NS = "{berth_test}"
FAST = {"BERTH_HOOK_RETRY_SCALE": "0.01"}
MAX_ATTEMPTS = 10  # the daemon's bound per event


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def hgetall(r, key):
    v = r("HGETALL", key) or []
    return dict(zip(v[::2], v[1::2]))


class Receiver:
    """A threaded HTTP/1.1 server recording POSTs. Per path: fail the first
    N calls with 500, always fail, or delay answers randomly."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.requests = []     # dicts: path, headers, body, doc, at, code
        self.fail_first = {}   # path -> calls still to fail
        self.always_fail = set()
        self.jitter = {}       # path -> max random delay (s)
        self.seen = {}
        self.server = None
        self.port = port
        self.up()

    def _handler(self):
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                path = self.path
                with rx.lock:
                    rx.seen[path] = rx.seen.get(path, 0) + 1
                    left = rx.fail_first.get(path, 0)
                    if left > 0:
                        rx.fail_first[path] = left - 1
                    code = 500 if left > 0 or path in rx.always_fail \
                        else 200
                    jitter = rx.jitter.get(path, 0)
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                with rx.lock:
                    rx.requests.append({
                        "path": path, "headers": dict(self.headers.items()),
                        "raw_headers": [k.lower() for k in self.headers],
                        "body": body, "doc": doc, "at": time.monotonic(),
                        "code": code})
                if jitter:
                    time.sleep(random.uniform(0, jitter))
                text = b"" if code == 200 else b"nope"
                self.send_response(code)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        return H

    def up(self):
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def down(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def got(self, path, code=None):
        with self.lock:
            return [q for q in self.requests if q["path"] == path and
                    (code is None or q["code"] == code)]


class Cluster:
    """A redis-server, a plugin dir (DEMO, engine.so) and berthd runs."""

    def __init__(self):
        self.tmp = TempDir()
        t = self.tmp.path
        self.redis = RedisServer(t).start()
        self.plugin_dir = os.path.join(t, "plugins")
        os.makedirs(self.plugin_dir)
        shutil.copy(os.path.join(PLUGINS, "demo.so"), self.plugin_dir)
        shutil.copy(os.path.join(TEST_PLUGINS, "engine.so"), self.plugin_dir)
        self.manifest = os.path.join(t, "plugins.yml")
        write(self.manifest, """plugin_dir: "%s"
plugins:
  - name: DEMO
    file: demo.so
    max_fails: 1
    settings:
      long_wait_seconds: 0
  - name: NOOP
    file: engine.so
  - name: SLEEPER
    file: engine.so
""" % self.plugin_dir)
        self.daemons = []

    def start(self, name, env=None):
        d_dir = os.path.join(self.tmp.path, name)
        os.makedirs(d_dir, exist_ok=True)
        cfg = harbor_config(self.redis.sock, os.path.join(d_dir, "data"),
                            self.manifest, "  stop_grace_seconds: 1\n"
                            "  shutdown_grace_seconds: 2\n")
        d = Berthd(d_dir, cfg, env=env).start()
        self.daemons.append(d)
        return d

    def close(self):
        """Stops everything; fails on a non-zero exit or a sanitizer
        report in a daemon's log."""
        problems = []
        for d in self.daemons:
            try:
                rc = d.stop()
            except AssertionError as e:
                problems.append(str(e))
                continue
            bad = [l for l in d.log().splitlines()
                   if "Sanitizer" in l or "runtime error:" in l]
            if rc != 0 or bad:
                problems.append("berthd exit %s %s" % (rc, bad[:5]))
        self.redis.stop()
        self.tmp.cleanup()
        if problems:
            raise AssertionError("; ".join(problems))


def submit(d, name, params, hook):
    st, _, doc = d.json("POST", "/api/v1/jobs", {"job": {
        "name": name, "parameters": params, "status_hook": hook,
        "metadata": {"kind": "Generic"}}})
    assert st == 202, (st, doc)
    return doc["job"]["id"]


def job(d, jid):
    st, _, doc = d.json("GET", "/api/v1/jobs/" + jid)
    assert st == 200, (st, doc)
    return doc["job"]


def wait_status(d, jid, status, timeout=20):
    return wait_for(lambda: (lambda j: j["status"] == status and j)(
        job(d, jid)), timeout=timeout, what="job %s %s" % (jid, status))


def ack(r, jid):
    a = r("HGET", NS + ":job_stats:" + jid, "ack")
    return json.loads(a) if a else None


def pending_hook_events(r):
    n = 0
    for k in r("KEYS", NS + ":berth:hook_events:*") or []:
        n += r("HLEN", k)
    return n


class HookTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rx = Receiver()
        cls.c = Cluster()
        cls.d = cls.c.start("a", env=FAST)
        cls.r = cls.c.redis.client()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()
        cls.rx.down()

    def delivered_statuses(self, path):
        return [(q["doc"]["status"], q["doc"].get("check_in"))
                for q in self.rx.got(path, 200)]

    def test_generic_sequence_payload_and_checkins(self):
        path = "/service/notifications/tasks/1"
        jid = submit(self.d, "DEMO", {"image": "demo-1"}, self.rx.url(path))
        wait_status(self.d, jid, "Success", timeout=30)
        wait_for(lambda: len(self.rx.got(path)) >= 4 and
                 (ack(self.r, jid) or {}).get("status") == "Success",
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
        jid = submit(self.d, "SLEEPER", {"ms": 20000}, self.rx.url(path))
        wait_for(lambda: self.rx.got(path), timeout=10, what="Running hook")
        st, _, _ = self.d.json("POST", "/api/v1/jobs/" + jid,
                               {"action": "stop"})
        self.assertEqual(st, 204)
        wait_for(lambda: ("Stopped", None) in self.delivered_statuses(path),
                 timeout=10, what="Stopped hook")
        self.assertEqual(self.delivered_statuses(path)[0],
                         ("Running", None))
        wait_for(lambda: (ack(self.r, jid) or {}).get("status") ==
                 "Stopped", timeout=5, what="Stopped ack")

    def test_receiver_failing_first_calls_ends_delivered(self):
        path = "/flaky"
        with self.rx.lock:
            self.rx.fail_first[path] = 3
        jid = submit(self.d, "SLEEPER", {"ms": 1500}, self.rx.url(path))
        wait_status(self.d, jid, "Success", timeout=15)
        wait_for(lambda: ("Success", None) in self.delivered_statuses(path),
                 timeout=10, what="Success delivered")
        got = self.rx.got(path)
        self.assertEqual([(q["doc"]["status"], q["code"]) for q in got],
                         [("Running", 500)] * 3 + [("Running", 200),
                                                   ("Success", 200)])
        # every retry sends the same snapshot
        self.assertEqual(len({q["body"] for q in got[:4]}), 1)
        wait_for(lambda: (ack(self.r, jid) or {}).get("status") ==
                 "Success", timeout=5, what="Success ack")

    def test_failing_receiver_does_not_slow_others_and_is_bounded(self):
        dead = "/dead"
        with self.rx.lock:
            self.rx.always_fail.add(dead)
        bad = submit(self.d, "NOOP", {}, self.rx.url(dead))
        lat = []
        for i in range(8):
            p = "/fast/%d" % i
            t0 = time.monotonic()
            jid = submit(self.d, "NOOP", {"i": i}, self.rx.url(p))
            wait_for(lambda: ("Success", None) in self.delivered_statuses(p),
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
            ids[p] = submit(self.d, "DEMO" if i % 2 else "SLEEPER",
                            {"image": "demo-%d" % i} if i % 2 else
                            {"ms": 200, "checkin": "c%d" % i},
                            self.rx.url(p))
        for p, jid in ids.items():
            wait_status(self.d, jid, "Success", timeout=30)
        for p, jid in ids.items():
            wait_for(lambda: ("Success", None) in
                     self.delivered_statuses(p), timeout=15,
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


class HookRestartTests(unittest.TestCase):
    def test_pending_hooks_survive_a_restart(self):
        rx = Receiver()
        port = rx.port
        rx.down()                       # nothing listens on the port
        c = Cluster()
        try:
            r = c.redis.client()
            d1 = c.start("one")
            path = "/restart"
            url = "http://127.0.0.1:%d%s" % (port, path)
            jid = submit(d1, "NOOP", {}, url)
            wait_status(d1, jid, "Success")
            wait_for(lambda: pending_hook_events(r) >= 1 and
                     "hook to " + url in d1.log(), timeout=10,
                     what="a failed, persisted hook")
            self.assertEqual(d1.stop(signal.SIGTERM), 0)
            self.assertGreaterEqual(pending_hook_events(r), 1)
            agents = hgetall(r, NS + ":berth:hook_agents")
            self.assertIn("0", agents.values())   # released at stop
            rx = Receiver(port)                 # the receiver comes back
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
            wait_for(lambda: (ack(r, jid) or {}).get("status") == "Success",
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
        rx = Receiver()
        port = rx.port
        rx.down()
        c = Cluster()
        try:
            r = c.redis.client()
            d1 = c.start("one")
            path = "/lost"
            url = "http://127.0.0.1:%d%s" % (port, path)
            jid = submit(d1, "NOOP", {}, url)
            wait_status(d1, jid, "Success")
            wait_for(lambda: pending_hook_events(r) >= 1, timeout=10,
                     what="a failed, persisted hook")
            d1.stop(signal.SIGKILL)
            c.daemons.remove(d1)
            for k in r("KEYS", NS + ":berth:hook_events:*") or []:
                r("DEL", k)
            self.assertIsNone(ack(r, jid))
            rx = Receiver(port)
            d2 = c.start("two", env={"BERTH_REAPER_INTERVAL_SECONDS": "1"})
            wait_for(lambda: (ack(r, jid) or {}).get("status") == "Success",
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
