"""Faults of the job engine (issue 11): a plugin that kills its in-process
daemon is counted as a failed attempt on recovery and ends in the dead set
after max_fails, so the daemon stops crash-looping; in a namespace shared
with instances serving other types, due retries of those types wait in
their queues instead of going to the dead set."""
import json
import os
import tempfile
import time
import unittest

from harness import (NS, Cluster, make_retries_due, retry_entries, submit_ok,
                     wait_for, wait_status)

REASON = "the daemon died while running this job"


def entries(max_fails=2):
    return """  - name: CRASHER
    file: crasher.so
    max_fails: %d
  - name: NOOP
    file: engine.so
""" % max_fails


def wait_died(d, timeout=20):
    wait_for(lambda: d.proc.poll() is not None, timeout=timeout,
             what="berthd to die")
    return d.proc.returncode


def forget_crashed(c, d, r):
    """The crashed daemon leaves the cluster's checks; its pool's last
    heartbeat is dated back a minute, as if it had died that long ago, so
    the next daemon's first recovery pass (after 1 s) takes it over instead
    of waiting for the heartbeat to age 10 s and for the next 30 s pass."""
    c.daemons.remove(d)
    d.stop()
    for pool in r("SMEMBERS", NS + ":worker_pools") or []:
        key = NS + ":worker_pools:" + pool
        beat = r("HGET", key, "heartbeat_at")
        if beat is not None:
            r("HSET", key, "heartbeat_at", int(beat) - 60)


def submit_crasher(d, r, params):
    """Submits a CRASHER job. The daemon may die before it answers (the
    job can start within a millisecond); the id is then read back from the
    one CRASHER stats hash in Redis."""
    try:
        return submit_ok(d, "CRASHER", params)
    except (ConnectionError, OSError):
        pass
    ids = [k.rsplit(":", 1)[1]
           for k in r("KEYS", NS + ":job_stats:*") or []
           if r("HGET", k, "name") == "CRASHER"]
    assert len(ids) == 1, ids
    return ids[0]


def dead_entries(r, jid):
    return [json.loads(m) for m in r("ZRANGE", NS + ":dead", 0, -1) or []
            if json.loads(m)["id"] == jid]


class CrashingPlugin(unittest.TestCase):
    def test_segfault_counts_and_ends_dead(self):
        with Cluster(entries(max_fails=2)) as c:
            r = c.client()
            a = c.start("a")
            jid = submit_crasher(a, r, {"mode": "segv"})
            self.assertNotEqual(wait_died(a), 0)
            forget_crashed(c, a, r)

            # restart: the crash is attempt 1 of 2; the first is retried at
            # once (most daemon deaths are kills and restarts), so it
            # crashes b as well
            b = c.start("b")
            self.assertNotEqual(wait_died(b), 0)
            line = "job %s (CRASHER) was running when pool" % jid
            self.assertIn(line, b.log())
            self.assertIn("counted as failed attempt 1 of 2; retried now",
                          b.log())
            forget_crashed(c, b, r)

            # attempt 2 of 2: dead, with the reason; no crash loop
            d = c.start("c")
            wait_for(lambda: dead_entries(r, jid), timeout=20,
                     what="the job in the dead set")
            (dead,) = dead_entries(r, jid)
            self.assertEqual(dead["fails"], 2)
            self.assertEqual(dead["err"], REASON)
            self.assertIn("moved to the dead set", d.log())
            self.assertEqual(wait_status(d, jid, "Error")["status"], "Error")
            self.assertEqual(retry_entries(r, jid), [])
            # nothing is left to run it again: the daemon keeps living
            # (a re-run would crash it within one requeue period)
            time.sleep(3)
            self.assertIsNone(d.proc.poll())
            self.assertEqual(r("GET", NS + ":jobs:CRASHER:lock"), "0")
            other = submit_ok(d, "NOOP", {})
            wait_status(d, other, "Success")
            r.close()

    def test_second_crash_backs_off(self):
        with Cluster(entries(max_fails=3)) as c:
            r = c.client()
            a = c.start("a")
            jid = submit_crasher(a, r, {"mode": "segv"})
            self.assertNotEqual(wait_died(a), 0)
            forget_crashed(c, a, r)
            b = c.start("b")
            self.assertNotEqual(wait_died(b), 0)
            forget_crashed(c, b, r)
            # attempt 2 of 3 waits in the retry set with back-off
            d = c.start("c")
            wait_for(lambda: retry_entries(r, jid), timeout=20,
                     what="a retry of the crashed job")
            (msg,) = [json.loads(m) for m in retry_entries(r, jid)]
            self.assertEqual(msg["fails"], 2)
            self.assertEqual(msg["err"], REASON)
            self.assertIn("counted as failed attempt 2 of 3; retry in", d.log())
            self.assertEqual(wait_status(d, jid, "Error")["status"], "Error")
            self.assertIsNone(d.proc.poll())
            r.close()

    def test_exit_counts(self):
        with Cluster(entries(max_fails=3)) as c, \
                tempfile.TemporaryDirectory() as tmp:
            r = c.client()
            a = c.start("a")
            once = os.path.join(tmp, "crashed")
            jid = submit_crasher(a, r, {"mode": "exit", "once": once})
            self.assertNotEqual(wait_died(a), 0)  # 3, or a sanitizer's code
            forget_crashed(c, a, r)
            b = c.start("b")
            # counted, retried at once; this time it succeeds
            wait_status(b, jid, "Success", timeout=20)
            self.assertIn("counted as failed attempt 1 of 3; retried now",
                          b.log())
            r.close()


class MixedNamespace(unittest.TestCase):
    def test_retry_of_a_type_served_elsewhere_stays_runnable(self):
        with Cluster(entries()) as c:
            r = c.client()
            d = c.start("a")
            # another instance (a Go jobservice, say) serves GOONLY
            r("SADD", NS + ":worker_pools", "gopool")
            r("HSET", NS + ":worker_pools:gopool", "heartbeat_at",
              int(time.time()), "job_names", "GOONLY")
            due = int(time.time()) - 1
            r("ZADD", NS + ":retry", due, json.dumps(
                {"name": "GOONLY", "id": "a" * 24, "t": 1, "args": None,
                 "fails": 1, "err": "x", "failed_at": 1}))
            r("ZADD", NS + ":retry", due, json.dumps(
                {"name": "NOBODY", "id": "b" * 24, "t": 1, "args": None,
                 "fails": 1, "err": "x", "failed_at": 1}))
            # the requeuer reads the pools every 5 s and runs every 1 s
            wait_for(lambda: r("LLEN", NS + ":jobs:GOONLY") == 1,
                     timeout=15, what="the GOONLY retry in its queue")
            (m,) = r("LRANGE", NS + ":jobs:GOONLY", 0, -1)
            self.assertEqual(json.loads(m)["id"], "a" * 24)
            self.assertEqual(dead_entries(r, "a" * 24), [])
            # a type no pool serves still goes to dead (spec 5.6)
            wait_for(lambda: dead_entries(r, "b" * 24), timeout=10,
                     what="the NOBODY retry in dead")
            self.assertEqual(dead_entries(r, "b" * 24)[0]["err"],
                             "unknown job when requeueing")
            self.assertIsNone(d.proc.poll())
            r("SREM", NS + ":worker_pools", "gopool")
            r("DEL", NS + ":worker_pools:gopool")
            r.close()


if __name__ == "__main__":
    unittest.main()
