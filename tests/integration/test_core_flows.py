"""Harbor core's flows end to end (spec Appendix B, 7.2, 13.2).

A Python "core" (receivers.Core) plays Harbor core's side over real HTTP: it owns tasks,
submits jobs with status hooks /service/notifications/tasks/<task>, and
handles hook events the way core does: find the task by
metadata.upstream_job_id (executions of a policy) or job_id; a non-empty
check_in goes to the vendor's check-in processor and never changes the
status (SCHEDULER: fire the schedule callback once per check_in_at;
GARBAGE_COLLECTION and RETENTION: store the result JSON); other events
move the task's status forward by (revision, status order).

Flows: a seconds-level SCHEDULER policy checks in every period and each
check-in starts exactly one GC job whose result arrives; a RETENTION
result arrives (and a RETENTION submission missing a parameter is 400);
stopping a running GC ends Stopped at core; deleting the schedule (stop
of the policy) reports Stopped for the policy's task and no execution runs
afterwards.

GARBAGE_COLLECTION and RETENTION are test stand-ins
(tests/plugins/corejobs.c) that check in the result shapes of 13.2."""
import json
import time
import unittest

from harness import NS, Cluster, wait_for
from receivers import Core

PLUGINS = """  - name: SCHEDULER
    file: scheduler.so
  - name: GARBAGE_COLLECTION
    file: corejobs.so
  - name: RETENTION
    file: corejobs.so
"""


class CoreFlowTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS)
        cls.d = cls.c.start(env={"BERTH_HOOK_RETRY_SCALE": "0.01"})
        cls.r = cls.c.client()
        cls.core = Core()

    @classmethod
    def tearDownClass(cls):
        cls.core.close()
        cls.r.close()
        cls.c.close()

    def submit(self, tid, name, **kw):
        """Core submits for task tid (status hook, job bound to the task)."""
        return self.core.submit(self.d, tid, name, **kw)

    def test_schedule_checkins_start_gc_and_stop_unschedules(self):
        core = self.core
        gc_tasks = []

        def start_gc(check_in_at):
            tid = core.new_task("GARBAGE_COLLECTION")
            st, _, doc = self.submit(tid, "GARBAGE_COLLECTION",
                                     params={"delete_untagged": True,
                                             "dry_run": False})
            if st == 202:
                gc_tasks.append(tid)

        core.on_schedule = start_gc
        self.addCleanup(setattr, core, "on_schedule", None)
        sched = core.new_task("SCHEDULER")
        st, _, doc = self.submit(sched, "SCHEDULER", kind="Periodic",
                                 cron="*/2 * * * * *")
        self.assertEqual(st, 202, doc)
        pid = doc["job"]["id"]

        # three executions: Running, check-in "checkin", Success each,
        # all mapped to the policy's task through upstream_job_id
        def three():
            done = {}
            for e in core.events_of(sched):
                if e["status"] == "Success" and "@" in e["job_id"]:
                    done[e["job_id"]] = e
            return done if len(done) >= 3 else None
        wait_for(three, timeout=20, step=0.2, what="3 executions")

        by_exec = {}
        for e in core.events_of(sched):
            by_exec.setdefault(e["job_id"], []).append(e)
        checkins = []
        for jid, evs in by_exec.items():
            if jid == pid:
                continue
            self.assertRegex(jid, r"^%s@\d+$" % pid)
            if evs[-1]["status"] not in ("Success",):
                continue        # still running at this instant
            seq = [(e["status"], e.get("check_in")) for e in evs]
            self.assertEqual(seq, [("Running", None),
                                   ("Running", "checkin"),
                                   ("Success", None)], jid)
            for e in evs:
                self.assertEqual(e["metadata"]["upstream_job_id"], pid)
                self.assertEqual(e["metadata"]["kind"], "Scheduled")
            checkins.append(evs[1]["metadata"]["check_in_at"])
        self.assertGreaterEqual(len(checkins), 3)
        self.assertEqual(len(set(checkins)), len(checkins),
                         "check_in_at must differ between executions")

        # every schedule callback started one GC whose result arrived
        def gcs_done():
            ts = [core.task(t) for t in gc_tasks]
            ok = [t for t in ts if t["status"] == "Success"]
            return ts if len(ts) >= 3 and len(ok) == len(ts) else None
        ts = wait_for(gcs_done, timeout=30, what="GC tasks Success")
        for t in ts:
            self.assertEqual(t["check_in"], {"freed_space": 1048576,
                                             "purged_blobs": 3,
                                             "purged_manifests": 1})
            self.assertEqual(t["statuses"], ["Running", "Success"])
        self.assertEqual(len(gc_tasks), len(core.callbacks))

        # deleting the schedule: stop the policy
        st, _, _ = self.d.request("POST", "/api/v1/jobs/" + pid,
                                  {"action": "stop"})
        self.assertEqual(st, 204)
        wait_for(lambda: [e for e in core.events_of(sched)
                          if e["job_id"] == pid], timeout=15,
                 what="Stopped event of the policy")
        self.assertEqual(self.r("ZCARD", NS + ":period:policies"), 0)
        stopped_at = time.time()
        # no execution starts any more: a run after the 1 s margin would
        # be due within one period (2 s) and report Running at once
        time.sleep(4)
        late = [e for e in core.events_of(sched)
                if e["status"] == "Running" and "@" in e["job_id"] and
                int(e["job_id"].split("@")[1]) > stopped_at + 1]
        self.assertEqual(late, [])
        # the policy's own task saw Stopped for the policy id
        pol = [e for e in core.events_of(sched) if e["job_id"] == pid]
        self.assertEqual([e["status"] for e in pol], ["Stopped"])
        core.on_schedule = None

    def test_retention_result_arrives(self):
        tid = self.core.new_task("RETENTION")
        params = {"repository": json.dumps({"namespace": "library",
                                            "name": "app",
                                            "kind": "image"}),
                  "liteMeta": json.dumps({"algorithm": "or",
                                          "rules": []}),
                  "dryRun": True}
        st, _, doc = self.submit(tid, "RETENTION", params=params)
        self.assertEqual(st, 202, doc)
        t = self.core.wait_task(tid, "Success")
        self.assertEqual(t["check_in"], {"total": 3, "retained": 1,
                                         "dry_run": True,
                                         "deleted": ["v1", "v2"]})
        # core's check-in does not move the status: Running, Success only
        self.assertEqual(t["statuses"], ["Running", "Success"])

        bad = dict(params)
        del bad["dryRun"]
        st, _, doc = self.submit(self.core.new_task("RETENTION"),
                                 "RETENTION", params=bad)
        self.assertEqual(st, 400, doc)
        self.assertIn("dryRun", doc["details"])

    def test_stop_running_gc(self):
        tid = self.core.new_task("GARBAGE_COLLECTION")
        st, _, doc = self.submit(tid, "GARBAGE_COLLECTION",
                                 params={"ms": 30000})
        self.assertEqual(st, 202, doc)
        jid = doc["job"]["id"]
        self.core.wait_task(tid, "Running")
        st, _, _ = self.d.request("POST", "/api/v1/jobs/" + jid,
                                  {"action": "stop"})
        self.assertEqual(st, 204)
        t = self.core.wait_task(tid, "Stopped", timeout=15)
        self.assertIsNone(t["check_in"])    # stopped before its result
        st, _, doc = self.d.json("GET", "/api/v1/jobs/" + jid)
        self.assertEqual(doc["job"]["status"], "Stopped")


if __name__ == "__main__":
    unittest.main()
