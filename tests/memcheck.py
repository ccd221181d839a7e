"""One end-to-end run of berthd under valgrind memcheck (tests/memcheck.sh
sets BERTHD to a wrapper that starts berthd under valgrind).

A real redis-server (the integration harness's Cluster), DEMO, a job that
fails (NORETRY), a scheduled NOOP and a periodic NOOP policy that runs at
least one execution; then SIGTERM. Cluster.close() requires exit status 0:
valgrind exits 99 on any memory error and on any definite or indirect
leak at shutdown (--error-exitcode=99
--errors-for-leak-kinds=definite,indirect). The valgrind log is checked
again here so the report names what was found."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "integration"))
from harness import (Cluster, executions, submit_ok, wait_for,  # noqa: E402
                     wait_status)

ENTRIES = """  - name: DEMO
    file: demo.so
    max_fails: 1
    settings:
      long_wait_seconds: 0
  - name: NOOP
    file: engine.so
  - name: NORETRY
    file: engine.so
    max_fails: 1
"""
TIMEOUT = 90   # everything is ~20x slower under valgrind


class MemcheckRun(unittest.TestCase):
    def test_end_to_end(self):
        c = Cluster(ENTRIES)
        try:
            d = c.start()
            demo = submit_ok(d, "DEMO", {"image": "demo/app:1"})
            bad = submit_ok(d, "NORETRY", {})
            later = submit_ok(d, "NOOP", {}, kind="Scheduled", delay=1)
            pol = submit_ok(d, "NOOP", {"p": 1}, kind="Periodic",
                            cron="* * * * * *")
            wait_status(d, demo, "Success", timeout=TIMEOUT)
            wait_status(d, bad, "Error", timeout=TIMEOUT)
            wait_status(d, later, "Success", timeout=TIMEOUT)

            def ran():
                st, _, doc = executions(d, pol, "?page_size=500")
                return st == 200 and any(
                    e["status"] == "Success" for e in doc or [])
            wait_for(ran, timeout=TIMEOUT, what="a periodic execution")
            st, _, _ = d.json("POST", "/api/v1/jobs/" + pol,
                              {"action": "stop"})
            self.assertEqual(st, 204)
        finally:
            try:
                c.close()
            except AssertionError as e:
                problems = str(e)
            else:
                problems = ""
        logs = os.environ["BERTH_MEMCHECK_LOGS"]
        report = ""
        for f in sorted(os.listdir(logs)):
            with open(os.path.join(logs, f)) as fh:
                report += fh.read()
        summary = "\n".join(l for l in report.splitlines()
                            if "lost:" in l or "ERROR SUMMARY" in l)
        print(summary, file=sys.stderr)
        self.assertFalse(problems, problems[-6000:] + "\n" + report[-20000:])
        errors = re.findall(r"ERROR SUMMARY: (\d+) errors", report)
        self.assertTrue(errors, "no valgrind report in " + logs)
        self.assertEqual(errors, ["0"] * len(errors), report[-20000:])


if __name__ == "__main__":
    unittest.main()
