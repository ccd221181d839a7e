"""Job logs over real HTTP: the FILE job logger's content (plugin lines,
check-ins, the final status line), levels and FATAL, GET
/api/v1/jobs/{id}/log errors in the order of spec 2.10 (400 plain text for
traversal, also URL-encoded; 500 for invalid ids and without a FILE job
logger; 404), the max_retrieve_size_mb tail, live follow (streaming,
waiting for a log not written yet, the follower limit, disconnects), a log
that cannot be opened failing the run, and the sweeper inside a running
daemon (BERTH_SWEEP_INTERVAL_SECONDS=1)."""
import os
import re
import stat
import time
import unittest

import json

from harness import (PLUGINS, Berthd, Cluster, Follower, demo_entry,
                     demo_manifest, harbor_config, job, submit_ok, wait_for,
                     wait_status, write)

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "
                  r"\[(DEBUG|INFO|WARNING|ERROR|FATAL)\] \[[^\]]+\]: ")
UNKNOWN = "0123456789abcdef01234567"
MB = 1048576

PLUGINS_LOGS = """  - name: DEMO
    file: demo.so
    max_fails: 3
    max_concurrency: 1
    settings:
      long_wait_seconds: 0
  - name: SLEEPER
    file: engine.so
  - name: IGNORE_STOP
    file: engine.so
  - name: LOGSPAM
    file: logspam.so
    max_fails: 1
"""


def config(redis_sock, data_dir, manifest_path):
    # FILE under ${data_dir}, a DB entry Berth ignores, 1 MiB tail limit,
    # 4 API threads (so at most 2 followers)
    return """protocol: "http"
port: 8080
worker_pool:
  workers: 4
  backend: "redis"
  redis_pool:
    redis_url: "%s"
    namespace: "berth_logs"
job_loggers:
  - name: "STD_OUTPUT"
    level: "INFO"
  - name: "FILE"
    level: "DEBUG"
    settings:
      base_dir: "${data_dir}/logs/jobs"
    sweeper:
      duration: 1
      settings:
        work_dir: "${data_dir}/logs/jobs"
  - name: "DB"
    level: "INFO"
loggers:
  - name: "STD_OUTPUT"
    level: "DEBUG"
max_retrieve_size_mb: 1
berth:
  data_dir: "%s"
  plugin_manifest: "%s"
  listen_address: "127.0.0.1"
  api_threads: 4
  stop_grace_seconds: 1
  shutdown_grace_seconds: 2
""" % (redis_sock, data_dir, manifest_path)


class LogTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS_LOGS, config=config)
        cls.d = cls.c.start(env={"BERTH_SWEEP_INTERVAL_SECONDS": "1"})
        cls.redis = cls.c.redis
        cls.base = os.path.join(cls.d.tmp, "data", "logs", "jobs")

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def get_log(self, jid, query=""):
        return self.d.request("GET", "/api/v1/jobs/%s/log%s" % (jid, query))

    def log_file(self, jid):
        return os.path.join(self.base, jid + ".log")

    # --- content ---------------------------------------------------------

    def test_demo_job_log(self):
        jid = submit_ok(self.d, "DEMO", {"image": "demo-1"})
        wait_status(self.d, jid, "Success")
        st, h, body = self.get_log(jid)
        self.assertEqual(st, 200, body)
        self.assertEqual(h["Content-Type"], "text/plain; charset=utf-8")
        text = body.decode()
        lines = text.splitlines()
        self.assertTrue(lines[0].startswith("==== run revision "), lines)
        for line in lines[1:]:
            self.assertRegex(line, LINE)
        self.assertRegex(text, r"(?m)Z \[INFO\] \[DEMO\]: Demo job starting$")
        self.assertIn("[DEMO]: Params: {\"image\":\"demo-1\"}", text)
        self.assertRegex(text, r"\[worker[a-z_]*\.c:\d+\]: job %s \(DEMO\) starting, "
                               r"revision \d+" % jid)
        self.assertRegex(text, r"\[INFO\] \[worker[a-z_]*\.c:")
        self.assertIn("check in: progress data: %30", text)
        self.assertIn("check in: progress data: %60", text)
        self.assertTrue(lines[-1].endswith("job finished with status Success"),
                        lines[-1])
        # the file itself: 0600 in a 0700 directory created by berthd
        self.assertEqual(stat.S_IMODE(os.stat(self.log_file(jid)).st_mode),
                         0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.base).st_mode), 0o700)
        with open(self.log_file(jid), "rb") as f:
            self.assertEqual(f.read(), body)
        # the STD_OUTPUT job logger wrote to the daemon's stdout, tagged
        out = self.d.log()
        self.assertIn("[DEMO]: [job %s] Demo job starting" % jid, out)
        self.assertIn("job logger DB is not supported", out)

    def test_levels_and_fatal(self):
        jid = submit_ok(self.d, "LOGSPAM", {"lines": 2,
                                            "debug": "a debug line",
                                            "fatal": "fatal but alive"})
        wait_status(self.d, jid, "Success")
        st, _, body = self.get_log(jid)
        self.assertEqual(st, 200)
        text = body.decode()
        # FILE at DEBUG keeps everything; FATAL is a level, not an exit
        self.assertIn("[DEBUG] [LOGSPAM]: a debug line", text)
        self.assertIn("[FATAL] [LOGSPAM]: fatal but alive", text)
        self.assertIn("job finished with status Success", text)
        st, _, _ = self.d.request("GET", "/api/v1/stats", auth=False)
        self.assertEqual(st, 200)
        # STD_OUTPUT at INFO drops the DEBUG line
        out = self.d.log()
        self.assertIn("[job %s] fatal but alive" % jid, out)
        self.assertNotIn("[job %s] a debug line" % jid, out)

    def test_stop_grace_warning_in_the_job_log(self):
        # stop_grace_seconds 1: a run ignoring the stop is reported
        jid = submit_ok(self.d, "IGNORE_STOP", {"ms": 4000})
        wait_status(self.d, jid, "Running")
        st, _, _ = self.d.request("POST", "/api/v1/jobs/" + jid,
                                  {"action": "stop"})
        self.assertEqual(st, 204)
        wait_for(lambda: os.path.exists(self.log_file(jid)) and
                 b"ignores stop" in open(self.log_file(jid), "rb").read(),
                 timeout=10, what="the stop-grace warning")
        st, _, body = self.get_log(jid)
        self.assertRegex(body.decode(),
                         r"\[WARNING\] \[worker\.c:\d+\]: job %s "
                         r"\(IGNORE_STOP\) ignores stop for \d+ s" % jid)

    # --- errors of spec 2.10 -----------------------------------------------

    def test_unknown_valid_ids_404(self):
        for jid in (UNKNOWN, UNKNOWN.upper(), UNKNOWN + "@1700003600"):
            st, h, doc = self.d.json("GET", "/api/v1/jobs/%s/log" % jid)
            self.assertEqual(st, 404, (jid, doc))
            self.assertEqual(doc, {"code": 10010,
                                   "message": "object is not found",
                                   "details": jid})

    def test_traversal_is_400_plain_text(self):
        for raw, shown in (("..", ".."), ("%2E%2E", ".."), ("%2e%2e", ".."),
                           ("a..b", "a..b"), (UNKNOWN + "@..",
                                              UNKNOWN + "@..")):
            st, h, body = self.get_log(raw)
            self.assertEqual(st, 400, (raw, body))
            self.assertEqual(h["Content-Type"], "text/plain; charset=utf-8")
            self.assertEqual(body.decode(), "invalid Job ID: " + shown)

    def test_encoded_slashes_never_escape(self):
        # civetweb decodes %2F before routing: these never reach a file
        secret = os.path.join(self.c.path, "secret.log")
        write(secret, "top secret\n")
        rel = os.path.relpath(secret[:-4], self.base)
        for raw in ("..%2F..%2Fetc%2Fpasswd",
                    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
                    rel.replace("/", "%2F"),
                    "%2F" + secret[1:-4].replace("/", "%2F"),
                    "..%5C..%5Csecret"):
            st, h, body = self.get_log(raw)
            self.assertIn(st, (400, 404), (raw, body))
            self.assertNotIn(b"root:", body)
            self.assertNotIn(b"top secret", body)
            if st == 400:
                self.assertTrue(body.startswith(b"invalid Job ID: "), body)

    def test_invalid_ids_500(self):
        for jid, details in (("abc", "invalid length of log identify"),
                             ("@1700003600", "invalid length of log identify"),
                             (UNKNOWN + "0", "invalid length of log identify"),
                             ("z" * 24, "invalid log identify"),
                             ("0123456789abcdef0123456g@1",
                              "invalid log identify")):
            st, _, doc = self.d.json("GET", "/api/v1/jobs/%s/log" % jid)
            self.assertEqual(st, 500, (jid, doc))
            self.assertEqual(doc, {"code": 10009,
                                   "message": "failed to get the job log",
                                   "details": details})

    def test_no_file_job_logger_500(self):
        t = os.path.join(self.c.path, "nofile")
        os.makedirs(t)
        m = os.path.join(t, "plugins.yml")
        write(m, demo_manifest(PLUGINS, long_wait=0))
        # harbor_config: STD_OUTPUT job logger only, another namespace
        d = Berthd(t, harbor_config(self.redis.sock, os.path.join(t, "data"),
                                    m)).start()
        try:
            st, _, doc = d.json("GET", "/api/v1/jobs/%s/log" % UNKNOWN)
            self.assertEqual(st, 500)
            self.assertEqual(doc, {"code": 10009,
                                   "message": "failed to get the job log",
                                   "details": "no log data getter is "
                                              "configured"})
            # step 1 comes first
            st, _, body = d.request("GET", "/api/v1/jobs/../log")
            self.assertEqual((st, body), (400, b"invalid Job ID: .."))
            # and the worker still logs through STD_OUTPUT
            jid = submit_ok(d, "DEMO", {"image": "demo-1"})
            wait_status(d, jid, "Success")
            self.assertIn("[DEMO]: [job %s] Demo job starting" % jid, d.log())
        finally:
            d.stop()

    # --- tail limit ----------------------------------------------------------

    def test_max_retrieve_size_tail(self):
        jid = submit_ok(self.d, "LOGSPAM", {"lines": 600, "size": 3000})
        wait_status(self.d, jid, "Success", timeout=60)
        path = self.log_file(jid)
        with open(path, "rb") as f:
            whole = f.read()
        self.assertGreater(len(whole), 1.5 * MB)
        st, h, body = self.get_log(jid)
        self.assertEqual(st, 200)
        self.assertEqual(len(body), MB)
        self.assertEqual(body, whole[-MB:])
        self.assertTrue(body.endswith(b"job finished with status Success\n"))

    # --- follow --------------------------------------------------------------

    def test_follow_streams_until_the_job_ends(self):
        jid = submit_ok(self.d, "LOGSPAM",
                        {"lines": 25, "interval_ms": 100})
        t0 = time.monotonic()
        f = Follower(self.d, jid)
        try:
            self.assertEqual(f.resp.status, 200)
            self.assertEqual(f.resp.getheader("Content-Type"),
                             "text/plain; charset=utf-8")
            self.assertEqual(f.resp.getheader("Transfer-Encoding"), "chunked")
            self.assertTrue(f.wait_end(30), "follow did not end")
            self.assertIsNone(f.error)
            text = f.text()
            spam = [(t, l) for t, l in f.lines if "[LOGSPAM]: spam " in l]
            self.assertEqual([l.split("spam ")[1].strip() for _, l in spam],
                             [str(i) for i in range(1, 26)])
            # lines arrived while the job ran, not all at the end
            self.assertGreater(spam[-1][0] - spam[0][0], 1.0)
            self.assertLess(spam[0][0] - t0, 2.0)
            self.assertTrue(f.lines[-1][1].rstrip().endswith(
                "job finished with status Success"), f.lines[-1])
            self.assertEqual(job(self.d, jid)["status"], "Success")
            self.assertLess(f.ended_at - spam[-1][0], 3.0)
            with open(self.log_file(jid)) as fh:
                self.assertEqual(fh.read(), text)
        finally:
            f.close()

    def test_follow_waits_for_a_log_not_written_yet(self):
        jid = submit_ok(self.d, "LOGSPAM", {"lines": 3}, kind="Scheduled",
                        delay=2)
        self.assertFalse(os.path.exists(self.log_file(jid)))
        f = Follower(self.d, jid)
        try:
            self.assertEqual(f.resp.status, 200)
            self.assertTrue(f.wait_end(30))
            text = f.text()
            self.assertIn("[LOGSPAM]: spam 3", text)
            self.assertIn("job finished with status Success", text)
        finally:
            f.close()
        # unknown and finished jobs without a log: 404 as without follow
        st, _, doc = self.d.json("GET", "/api/v1/jobs/%s/log?follow=true"
                                 % UNKNOWN)
        self.assertEqual((st, doc["code"]), (404, 10010))
        # a finished job: the whole log, then the end
        st, h, body = self.get_log(jid, "?follow=true")
        self.assertEqual(st, 200)
        self.assertTrue(body.endswith(b"job finished with status Success\n"))

    def test_follow_limit_and_disconnect(self):
        jid = submit_ok(self.d, "LOGSPAM",
                        {"lines": 300, "interval_ms": 100})
        wait_for(lambda: os.path.exists(self.log_file(jid)), timeout=10,
                 what="log file")
        a = Follower(self.d, jid)
        b = Follower(self.d, jid)
        try:
            self.assertEqual((a.resp.status, b.resp.status), (200, 200))
            wait_for(lambda: a.lines and b.lines, what="first lines")
            # api_threads 4: at most 2 followers
            st, _, doc = self.d.json("GET", "/api/v1/jobs/%s/log?follow=true"
                                     % jid)
            self.assertEqual(st, 503, doc)
            self.assertEqual(doc["code"], 10009)
            # other requests are still served
            self.assertEqual(job(self.d, jid)["status"], "Running")
            # a client that goes away frees its slot at the next line
            a.resp.close()
            a.close()

            def slot_free():
                c = Follower(self.d, jid)
                if c.resp.status == 200:
                    return c
                c.close()
                return None
            c = wait_for(slot_free, timeout=10, step=0.2,
                         what="a free follower slot")
            try:
                st, _, _ = self.d.request("POST", "/api/v1/jobs/" + jid,
                                          {"action": "stop"})
                self.assertEqual(st, 204)
                self.assertTrue(b.wait_end(15))
                self.assertTrue(c.wait_end(15))
                self.assertIn("job finished with status Stopped", b.text())
                self.assertIn("job finished with status Stopped", c.text())
            finally:
                c.close()
        finally:
            a.close()
            b.close()

    # --- failures and the sweeper -------------------------------------------

    def test_unopenable_log_fails_the_run(self):
        jid = submit_ok(self.d, "LOGSPAM", {"lines": 1}, kind="Scheduled",
                        delay=2)
        os.makedirs(self.log_file(jid))  # <id>.log is a directory
        try:
            wait_status(self.d, jid, "Error")
            self.assertRegex(self.d.log(),
                             r"cannot open the job log .*%s\.log" % jid)
            st, _, doc = self.d.json("GET", "/api/v1/jobs/%s/log" % jid)
            self.assertEqual(st, 500, doc)
            self.assertEqual(doc["code"], 10009)
        finally:
            os.rmdir(self.log_file(jid))

    def test_sweeper_in_a_running_daemon(self):
        now = time.time()
        old = os.path.join(self.base, "aaaaaaaaaaaaaaaaaaaaaaaa.log")
        fresh = os.path.join(self.base, "bbbbbbbbbbbbbbbbbbbbbbbb.log")
        old_dir = os.path.join(self.base, "old-empty-dir")
        target = os.path.join(self.c.path, "outside-target.txt")
        link = os.path.join(self.base, "old-link")
        write(old, "old\n")
        write(fresh, "fresh\n")
        write(target, "keep me\n")
        os.makedirs(old_dir)
        os.symlink(target, link)
        for p in (old, old_dir, target):
            os.utime(p, (now - 3 * 86400, now - 3 * 86400))
        os.utime(link, (now - 3 * 86400, now - 3 * 86400),
                 follow_symlinks=False)
        wait_for(lambda: not os.path.exists(old)
                 and not os.path.exists(old_dir)
                 and not os.path.lexists(link), timeout=10,
                 what="the sweeper")
        self.assertTrue(os.path.exists(fresh))
        self.assertTrue(os.path.exists(target))
        st, _, _ = self.d.request(
            "GET", "/api/v1/jobs/bbbbbbbbbbbbbbbbbbbbbbbb/log")
        self.assertEqual(st, 200)
        self.assertIn("log sweeper: removed", self.d.log())


class ServiceLoggerTests(unittest.TestCase):
    """Spec 10.3: every entry of `loggers` is an output with its own level;
    the FILE service log is appended to and created 0600."""

    LOGGERS = """loggers:
  - name: "STD_OUTPUT"
    level: "DEBUG"
max_retrieve"""
    TWO_LOGGERS = """loggers:
  - name: "STD_OUTPUT"
    level: "ERROR"
  - name: "FILE"
    level: "DEBUG"
    settings:
      base_dir: "${data_dir}/logs/svc"
      filename: "berthd.log"
max_retrieve"""
    DEMO = """  - name: DEMO
    file: demo.so
    settings:
      long_wait_seconds: 0
"""

    def test_two_service_loggers_with_their_own_levels(self):
        def two_loggers(sock, _data, manifest):
            # both runs share one data dir: the service log is appended to
            cfg = config(sock, data, manifest)
            self.assertIn(self.LOGGERS, cfg)
            return cfg.replace(self.LOGGERS, self.TWO_LOGGERS)
        with Cluster(self.DEMO, config=two_loggers) as c:
            data = os.path.join(c.path, "data")
            logf = os.path.join(data, "logs", "svc", "berthd.log")
            for run in (1, 2):
                d = c.start("d%d" % run)
                jid = submit_ok(d, "DEMO", {"image": "demo x"})
                wait_status(d, jid, "Success")
                self.assertEqual(d.stop(), 0)
                out = d.log()
                # stdout: the STD_OUTPUT job logger (INFO) and the
                # ERROR service logger only; no service INFO line
                self.assertNotIn("starting with", out)
                self.assertNotIn("[DEBUG]", out)
                for ln in out.splitlines():
                    if "[INFO]" in ln:
                        self.assertIn("[job %s]" % jid, ln)
            with open(logf) as f:
                text = f.read()
            # both runs appended; DEBUG reaches the file
            self.assertEqual(text.count("starting with"), 2, text)
            self.assertIn("[DEBUG]", text)
            for ln in text.splitlines():
                self.assertRegex(ln, LINE)
            self.assertEqual(stat.S_IMODE(os.stat(logf).st_mode), 0o600)


if __name__ == "__main__":
    unittest.main()


def json_config(extra):
    """harbor_config() with the service log and the STD_OUTPUT job logger
    in JSON (settings.format: json)."""
    def config(sock, data, manifest):
        text = harbor_config(sock, data, manifest, extra)
        return text.replace(
            '    level: "DEBUG"\n',
            '    level: "DEBUG"\n    settings:\n      format: "json"\n')
    return config


def json_lines(text):
    """Every line of text as a JSON object (fails on any other line)."""
    out = []
    for line in text.splitlines():
        doc = json.loads(line)
        assert isinstance(doc, dict), line
        out.append(doc)
    return out


class ServiceLogJsonTests(unittest.TestCase):
    """loggers[].settings.format: json: one JSON object per line with
    time, level, caller, message, and job_id/job_type where a job is at
    hand; the STD_OUTPUT job logger the same on the same stream."""

    def test_every_line_is_json(self):
        with Cluster(demo_entry(long_wait=0), config=json_config(
                "  stop_grace_seconds: 1\n  shutdown_grace_seconds: 2\n"
        )) as c:
            d = c.start()
            jid = submit_ok(d, "DEMO", {"image": "demo"})
            wait_status(d, jid, "Success")
            self.assertEqual(d.stop(), 0)
            lines = json_lines(d.log())
        for doc in lines:
            self.assertEqual(
                set(doc) - {"job_id", "job_type"},
                {"time", "level", "caller", "message"}, doc)
            self.assertRegex(doc["time"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(doc["level"],
                          ("DEBUG", "INFO", "WARNING", "ERROR", "FATAL"))
        ready = [x for x in lines if x["message"].startswith("berthd ready")]
        self.assertEqual(len(ready), 1, lines)
        self.assertRegex(ready[0]["caller"], r"^main\.c:\d+$")
        self.assertNotIn("job_id", ready[0])
        mine = [x for x in lines if x.get("job_id") == jid]
        msgs = [x["message"] for x in mine]
        self.assertIn("progress data: %60", " ".join(msgs))
        self.assertTrue(any("finished with status Success" in m
                            for m in msgs), msgs)


class ShutdownCountdownTests(unittest.TestCase):
    """SIGTERM with a job running: the service log says which jobs the
    shutdown waits for, counts the grace down every 5 s, says when it asks
    them to stop, and the job's own lines carry its id (JSON format)."""

    def test_countdown(self):
        with Cluster(demo_entry(long_wait=60), config=json_config(
                "  stop_grace_seconds: 5\n  shutdown_grace_seconds: 6\n"
        )) as c:
            d = c.start()
            jid = submit_ok(d, "DEMO", {"image": "demo"})
            wait_status(d, jid, "Running")
            t0 = time.monotonic()
            self.assertEqual(d.stop(timeout=30), 0)
            took = time.monotonic() - t0
            lines = json_lines(d.log())
        self.assertGreaterEqual(took, 5.5)
        self.assertLess(took, 12)
        jobs = "1 running job: %s (DEMO)" % jid
        msgs = [x["message"] for x in lines]
        want = [
            "shutdown: waiting up to 6 s for %s to finish "
            "(berth.shutdown_grace_seconds)" % jobs,
            "shutdown: still waiting for %s to finish, 1 s left" % jobs,
            "the shutdown grace is over with %s; asking them to stop "
            "(up to 5 s, berth.stop_grace_seconds)" % jobs,
            "job %s (DEMO) stopped by the shutdown" % jid,
        ]
        at = []
        for w in want:
            hits = [i for i, m in enumerate(msgs) if w in m]
            self.assertEqual(len(hits), 1, (w, msgs[-30:]))
            at.append(hits[0])
        self.assertEqual(at, sorted(at), msgs[-30:])
        # the stop went through the job's own thread: its id and type
        stopped = lines[at[-1]]
        self.assertEqual(stopped.get("job_id"), jid, stopped)
        self.assertEqual(stopped.get("job_type"), "DEMO", stopped)
