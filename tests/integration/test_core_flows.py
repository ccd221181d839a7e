"""Harbor core's flows end to end (spec Appendix B, 7.2, 13.2).

A Python "core" plays Harbor core's side over real HTTP: it owns tasks,
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
import http.server
import json
import os
import re
import shutil
import threading
import time
import unittest

from harness import (PLUGINS, TEST_PLUGINS, Berthd, RedisServer, TempDir,
                     harbor_config, wait_for)

NS = "{berth_test}"
ORDER = {"Pending": 0, "Scheduled": 1, "Running": 2, "Stopped": 3,
         "Error": 3, "Success": 3}


class Core:
    """Harbor core's task table and hook endpoint."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tasks = {}        # task id -> dict
        self.by_job = {}       # job id -> task id
        self.events = []       # (task id, event doc), in arrival order
        self.callbacks = []    # check_in_at values that fired a callback
        self.on_schedule = None
        self.next_id = 100
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def hook_url(self, task_id):
        return "http://127.0.0.1:%d/service/notifications/tasks/%d" % (
            self.server.server_address[1], task_id)

    def new_task(self, vendor):
        with self.lock:
            self.next_id += 1
            tid = self.next_id
            self.tasks[tid] = {"vendor": vendor, "status": "Pending",
                               "revision": 0, "job_id": None,
                               "check_in": None, "statuses": []}
            return tid

    def bind(self, tid, job_id):
        with self.lock:
            self.tasks[tid]["job_id"] = job_id
            self.by_job[job_id] = tid

    def task(self, tid):
        with self.lock:
            return json.loads(json.dumps(self.tasks[tid]))

    def events_of(self, tid):
        with self.lock:
            return [e for t, e in self.events if t == tid]

    def _handle(self, path, doc):
        m = re.match(r"^/service/notifications/tasks/(\d+)$", path)
        if not m:
            return 404
        md = doc.get("metadata") or {}
        with self.lock:
            # core finds the task by upstream_job_id, else by job_id
            key = md.get("upstream_job_id") or doc["job_id"]
            tid = self.by_job.get(key)
            if tid is None or tid != int(m.group(1)):
                return 404
            t = self.tasks[tid]
            self.events.append((tid, doc))
            fire = None
            if doc.get("check_in"):
                if t["vendor"] == "SCHEDULER":
                    cia = md["check_in_at"]
                    if cia not in self.callbacks:    # dedupe by check_in_at
                        self.callbacks.append(cia)
                        fire = cia
                else:
                    t["check_in"] = json.loads(doc["check_in"])
                return_code = 200
            else:
                rev, st = md.get("revision", 0), doc["status"]
                if (rev, ORDER[st]) > (t["revision"], ORDER[t["status"]]):
                    t["revision"], t["status"] = rev, st
                t["statuses"].append(st)
                return_code = 200
        if fire is not None and self.on_schedule:
            # core runs the schedule's callback (here: start a GC)
            threading.Thread(target=self.on_schedule, args=(fire,),
                             daemon=True).start()
        return return_code

    def _handler(self):
        core = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                try:
                    code = core._handle(self.path, json.loads(body))
                except (ValueError, KeyError):
                    code = 400
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return H


class CoreFlowTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        t = cls.tmp.path
        cls.redis = RedisServer(t).start()
        pdir = os.path.join(t, "plugins")
        os.makedirs(pdir)
        shutil.copy(os.path.join(PLUGINS, "scheduler.so"), pdir)
        shutil.copy(os.path.join(TEST_PLUGINS, "corejobs.so"), pdir)
        manifest = os.path.join(t, "plugins.yml")
        with open(manifest, "w") as f:
            f.write("""plugin_dir: "%s"
plugins:
  - name: SCHEDULER
    file: scheduler.so
  - name: GARBAGE_COLLECTION
    file: corejobs.so
  - name: RETENTION
    file: corejobs.so
""" % pdir)
        cfg = harbor_config(cls.redis.sock, os.path.join(t, "data"),
                            manifest, "  stop_grace_seconds: 1\n"
                            "  shutdown_grace_seconds: 2\n")
        cls.d = Berthd(t, cfg, env={"BERTH_HOOK_RETRY_SCALE": "0.01"}
                       ).start()
        cls.r = cls.redis.client()
        cls.core = Core()

    @classmethod
    def tearDownClass(cls):
        cls.core.close()
        rc = cls.d.stop()
        log = cls.d.log()
        cls.r.close()
        cls.redis.stop()
        cls.tmp.cleanup()
        if rc != 0:
            raise AssertionError("berthd exit %s:\n%s" % (rc, log[-4000:]))

    def submit(self, tid, name, kind="Generic", params=None, cron=None):
        job = {"name": name, "metadata": {"kind": kind},
               "status_hook": self.core.hook_url(tid)}
        if params is not None:
            job["parameters"] = params
        if cron:
            job["metadata"]["cron_spec"] = cron
        return self.d.json("POST", "/api/v1/jobs", {"job": job})

    def wait_task(self, tid, status, timeout=30):
        return wait_for(lambda: (lambda t: t if t["status"] == status
                                 else None)(self.core.task(tid)),
                        timeout=timeout, what="task %d %s" % (tid, status))

    def test_schedule_checkins_start_gc_and_stop_unschedules(self):
        core = self.core
        gc_tasks = []

        def start_gc(check_in_at):
            tid = core.new_task("GARBAGE_COLLECTION")
            st, _, doc = self.submit(tid, "GARBAGE_COLLECTION",
                                     params={"delete_untagged": True,
                                             "dry_run": False})
            if st == 202:
                core.bind(tid, doc["job"]["id"])
                gc_tasks.append(tid)

        core.on_schedule = start_gc
        sched = core.new_task("SCHEDULER")
        st, _, doc = self.submit(sched, "SCHEDULER", kind="Periodic",
                                 cron="*/2 * * * * *")
        self.assertEqual(st, 202, doc)
        pid = doc["job"]["id"]
        core.bind(sched, pid)

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
        time.sleep(5)   # two and a half periods
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
        self.core.bind(tid, doc["job"]["id"])
        t = self.wait_task(tid, "Success")
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
        self.core.bind(tid, jid)
        self.wait_task(tid, "Running")
        st, _, _ = self.d.request("POST", "/api/v1/jobs/" + jid,
                                  {"action": "stop"})
        self.assertEqual(st, 204)
        t = self.wait_task(tid, "Stopped", timeout=15)
        self.assertIsNone(t["check_in"])    # stopped before its result
        st, _, doc = self.d.json("GET", "/api/v1/jobs/" + jid)
        self.assertEqual(doc["job"]["status"], "Stopped")


if __name__ == "__main__":
    unittest.main()
