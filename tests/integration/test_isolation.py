"""Process isolation (manifest `isolation: process`, host/engine/isolate.h):
each job of such a type runs in its own plugin runner process. A plugin that
crashes, calls exit(), hangs past max_run_seconds, ignores a stop or leaks
past max_rss_mb costs only its own job (Error with a reason, retried as
max_fails says); the daemon keeps running and serving other jobs, isolated
or in-process. A well-behaved isolated plugin gets every host service
(log, check-in, properties, parameters, type state, stop) across the
runner's socket.

Test plugins: tests/plugins/misbehave.c (SEGV, EXIT3, HANG, LEAK) and
tests/plugins/pipecheck.c (PIPECHECK); GOOD_A runs in-process next to
them."""
import os
import shutil
import subprocess
import time
import unittest

import harness
from harness import (BERTHD, NS, Cluster, TempDir, exhaust_retries,
                     harbor_config, job, job_log_lines, retry_entries,
                     run_ok, stop_job, submit_ok, wait_for, wait_job_line,
                     wait_run_ended, wait_status, write)

ENTRIES = """  - name: PIPECHECK
    file: pipecheck.so
    isolation: process
    settings:
      greeting: hello-from-init
      properties:
        answer: 42
  - name: SEGV
    file: misbehave.so
    isolation: process
    max_fails: 2
  - name: EXIT3
    file: misbehave.so
    isolation: process
    max_fails: 1
  - name: HANG
    file: misbehave.so
    isolation: process
    max_fails: 1
    max_run_seconds: 3
  - name: LEAK
    file: misbehave.so
    isolation: process
    max_fails: 1
    max_rss_mb: 64
  - name: GOOD_A
    file: good_a.so
"""


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS for %d" % pid)


class IsolationTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(ENTRIES)
        cls.d = cls.c.start()
        cls.r = cls.c.client()

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()

    def alive_and_serving(self):
        """The daemon still runs, and serves an isolated and an
        in-process job."""
        self.assertIsNone(self.d.proc.poll(), "berthd died")
        run_ok(self.d, "PIPECHECK", {"word": "after"})
        run_ok(self.d, "GOOD_A", {"n": 1})

    def error_reason(self, jid, text):
        """The job is Error and its log says why."""
        wait_status(self.d, jid, "Error")
        return wait_job_line(self.d, jid, text)

    def attempts(self, jid, marker):
        return len([l for l in job_log_lines(self.d, jid) if marker in l])

    def test_host_services_cross_the_socket(self):
        jid = run_ok(self.d, "PIPECHECK",
                     {"word": "w-1", "checkin": "step-1"})
        lines = "\n".join(wait_job_line(self.d, jid, "PIPECHECK checkin"))
        self.assertIn("checkin rc=0", lines)
        text = "\n".join(job_log_lines(self.d, jid))
        pid_line = [l for l in job_log_lines(self.d, jid)
                    if "PIPECHECK pid=" in l][0]
        pid = int(pid_line.split("pid=")[1].split()[0])
        self.assertNotEqual(pid, self.d.proc.pid,
                            "run() ran inside the daemon")
        self.assertIn("greeting=hello-from-init", pid_line)
        self.assertIn("job id=%s name=PIPECHECK kind=Generic" % jid, text)
        self.assertIn("PIPECHECK word=w-1", text)
        self.assertIn("property answer=42 namespace=berth_test", text)
        self.assertIn("PIPECHECK a debug line", text)   # job log at DEBUG
        # the check-in went through the daemon's tracker
        self.assertIn("check in: step-1", text)
        stats = self.r("HGETALL", NS + ":job_stats:" + jid)
        stats = dict(zip(stats[::2], stats[1::2]))
        self.assertIn("check_in_at", stats)

    def test_plugin_error_text_arrives(self):
        jid = submit_ok(self.d, "PIPECHECK", {"fail": "on purpose"})
        self.error_reason(jid, "asked to fail: on purpose")
        wait_for(lambda: retry_entries(self.r, jid), what="retry entry")
        for m in retry_entries(self.r, jid):
            self.r("ZREM", NS + ":retry", m)

    def test_segfault_costs_one_job_and_is_retried(self):
        jid = submit_ok(self.d, "SEGV")
        self.error_reason(
            jid, "plugin process killed by signal 11 (SIGSEGV)")
        self.alive_and_serving()
        # max_fails 2: one retry, then final
        exhaust_retries(self.d, self.r, jid,
                        lambda: self.attempts(jid, "SEGV about to crash"),
                        2)
        self.alive_and_serving()

    def test_exit_costs_one_job(self):
        jid = submit_ok(self.d, "EXIT3")
        self.error_reason(
            jid, "plugin process exited with status 3 before run() "
                 "returned")
        # max_fails 1: no retry
        self.assertEqual(retry_entries(self.r, jid), [])
        self.alive_and_serving()

    def test_max_run_seconds_kills_a_runaway(self):
        t0 = time.monotonic()
        jid = submit_ok(self.d, "HANG")
        self.error_reason(
            jid, "plugin process killed: run() exceeded max_run_seconds "
                 "(3 s)")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 3)
        self.assertLess(took, 15)
        self.alive_and_serving()

    def test_max_run_seconds_sigkills_when_sigterm_is_ignored(self):
        t0 = time.monotonic()
        jid = submit_ok(self.d, "HANG", {"ignore_term": True})
        self.error_reason(jid, "exceeded max_run_seconds (3 s)")
        # SIGTERM at 3 s is ignored; SIGKILL follows 2 s later
        self.assertGreaterEqual(time.monotonic() - t0, 5)
        wait_run_ended(self.r, jid)
        self.alive_and_serving()

    def test_leak_is_capped_by_max_rss_mb(self):
        jid = submit_ok(self.d, "LEAK", {"mb": 400, "step_ms": 2})
        lines = self.error_reason(jid, "exceeded max_rss_mb (64 MiB)")
        self.assertIn("plugin process killed: RSS", lines[0])
        self.alive_and_serving()

    def test_leaks_die_with_their_process(self):
        before = rss_mib(self.d.proc.pid)
        # 40 x 4 MiB leaked: 160 MiB in a daemon running them in-process
        for _ in range(40):
            run_ok(self.d, "LEAK", {"mb": 4})
        grown = rss_mib(self.d.proc.pid) - before
        self.assertLess(grown, 40, "daemon RSS grew by %d MiB" % grown)

    def test_cooperative_stop_reaches_the_runner(self):
        jid = submit_ok(self.d, "PIPECHECK", {"wait_stop": True})
        wait_job_line(self.d, jid, "PIPECHECK waiting for stop")
        self.assertEqual(stop_job(self.d, jid), 204)
        wait_job_line(self.d, jid, "PIPECHECK saw the stop")
        wait_status(self.d, jid, "Stopped")
        wait_run_ended(self.r, jid)
        self.assertEqual(job(self.d, jid)["status"], "Stopped")

    def test_runner_ignoring_stop_is_killed_after_grace(self):
        # stop_grace_seconds is 1 (FAST_GRACE); max_run_seconds (3) would
        # end it later with another reason
        jid = submit_ok(self.d, "HANG", {"ignore_term": True})
        wait_job_line(self.d, jid, "HANG hanging")
        t0 = time.monotonic()
        self.assertEqual(stop_job(self.d, jid), 204)
        wait_job_line(self.d, jid, "ignored the stop for 1 s; killed")
        self.assertLess(time.monotonic() - t0, 2.9)
        wait_run_ended(self.r, jid)
        self.assertEqual(job(self.d, jid)["status"], "Stopped")
        self.assertEqual(retry_entries(self.r, jid), [])
        self.alive_and_serving()

    def test_many_crashes_leave_the_daemon_serving(self):
        jids = [submit_ok(self.d, "EXIT3") for _ in range(6)]
        jids += [submit_ok(self.d, "SEGV") for _ in range(6)]
        ok = [submit_ok(self.d, "PIPECHECK", {"word": str(i)})
              for i in range(6)]
        for j in ok:
            wait_status(self.d, j, "Success")
        for j in jids:
            wait_status(self.d, j, "Error")
            for m in retry_entries(self.r, j):
                self.r("ZREM", NS + ":retry", m)
        self.alive_and_serving()


class SelfRunnerTests(unittest.TestCase):
    """Without berth-plugin-runner next to it, berthd runs the plugin in
    `berthd --plugin-runner` mode: same behaviour."""

    def test_berthd_is_its_own_runner(self):
        lone = TempDir()
        saved = harness.BERTHD
        try:
            exe = os.path.join(lone.path, "berthd")
            shutil.copy(BERTHD, exe)
            self.assertFalse(os.path.exists(
                os.path.join(lone.path, "berth-plugin-runner")))
            harness.BERTHD = exe
            with Cluster(ENTRIES) as c:
                d = c.start()
                jid = run_ok(d, "PIPECHECK", {"word": "self"})
                self.assertTrue(wait_job_line(d, jid, "PIPECHECK word=self"))
                jid = submit_ok(d, "SEGV")
                wait_status(d, jid, "Error")
                wait_job_line(d, jid, "killed by signal 11 (SIGSEGV)")
                self.assertIn("--plugin-runner (no berth-plugin-runner",
                              d.log())
                r = c.client()
                for m in retry_entries(r, jid):
                    r("ZREM", NS + ":retry", m)
                r.close()
                run_ok(d, "GOOD_A", {"n": 1})
        finally:
            harness.BERTHD = saved
            lone.cleanup()


class ManifestRowsTests(unittest.TestCase):
    """The rows as --check-config reads them."""

    def check(self, entry):
        tmp = TempDir()
        try:
            t = tmp.path
            manifest = os.path.join(t, "plugins.yml")
            shutil.copy(harness.plugin_file("good_a.so"), t)
            write(manifest, 'plugin_dir: "%s"\nplugins:\n'
                  '  - name: GOOD_A\n    file: good_a.so\n%s' % (t, entry))
            cfg = os.path.join(t, "berth.yml")
            write(cfg, harbor_config("/nonexistent.sock",
                                     os.path.join(t, "data"), manifest))
            p = subprocess.run([BERTHD, "-c", cfg, "--check-config"],
                               capture_output=True, text=True, timeout=30)
            return p.returncode, p.stdout + p.stderr
        finally:
            tmp.cleanup()

    def test_isolation_value_is_checked(self):
        rc, out = self.check("    isolation: procss\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("isolation", out)
        self.assertIn("process", out)

    def test_limits_without_process_isolation_are_reported(self):
        rc, out = self.check("    max_run_seconds: 5\n")
        self.assertEqual(rc, 0, out)
        self.assertIn("apply only with isolation: process", out)

    def test_process_isolation_with_limits_is_valid(self):
        rc, out = self.check("    isolation: process\n"
                             "    max_run_seconds: 5\n"
                             "    max_rss_mb: 128\n")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("warning", out)


if __name__ == "__main__":
    unittest.main()
