"""The web dashboard (/ui/) in a real browser: Debian's chromium, headless,
driven over the WebDriver protocol by chromedriver (webdriver.py), against a
real berthd and redis-server.

Flows: sign in (a wrong secret refused, a refused stored secret asks
again); a submitted job seen going from Pending to Success; a queue paused
and resumed from the queues page with Redis's paused key checked; a running
job's log followed live; a dead job retried and another deleted; HTML in
job parameters shown as text with no script run; the overview chart of a
freshly opened tab drawn at once from the daemon's per-minute history of
runs finished before. Every page is visited
once and photographed. StaticFilesTests checks the files' headers over
plain HTTP.

Screenshots go to <build>/ui-screenshots/ (BERTH_BUILD_DIR, else the
directory of BERTHD). When chromedriver or chromium cannot start, the tests
fail: CI must install chromium and chromium-driver.
"""
import json
import os
import re
import time
import unittest

from harness import (NS, SECRET, Cluster, job, submit_ok, wait_for,
                     wait_status)
from webdriver import Browser

PLUGINS = """  - name: DEMO
    file: demo.so
    max_fails: 3
    priority: 1
    settings:
      long_wait_seconds: 3
  - name: NOOP
    file: engine.so
  - name: FLAKY
    file: engine.so
    max_fails: 1
"""


def config(redis_sock, data_dir, manifest):
    # a FILE job logger: the log route (and its follow mode) reads it
    return """protocol: "http"
port: 8080
worker_pool:
  workers: 4
  backend: "redis"
  redis_pool:
    redis_url: "%s"
    namespace: "berth_test"
job_loggers:
  - name: "FILE"
    level: "DEBUG"
    settings:
      base_dir: "${data_dir}/logs/jobs"
loggers:
  - name: "STD_OUTPUT"
    level: "INFO"
berth:
  data_dir: "%s"
  plugin_manifest: "%s"
  listen_address: "127.0.0.1"
  stop_grace_seconds: 1
  shutdown_grace_seconds: 2
""" % (redis_sock, data_dir, manifest)


def shots_dir():
    build = os.environ.get("BERTH_BUILD_DIR") or os.path.dirname(
        os.path.abspath(os.environ.get("BERTHD", "build/berthd")))
    return os.path.join(build, "ui-screenshots")


class DashboardTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS, config=config)
        try:
            cls.d = cls.c.start()
            cls.r = cls.c.client()
            cls.base = "http://127.0.0.1:%d" % cls.d.port
            cls.b = Browser()
        except BaseException:
            cls.c.close()
            raise
        cls.shots = shots_dir()

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()
        cls.r.close()
        cls.c.close()

    # --- helpers ----------------------------------------------------------

    def shot(self, name):
        self.b.screenshot(os.path.join(self.shots, name + ".png"))

    def login(self):
        """Opens the dashboard signed in (sessionStorage keeps the secret
        for the tab, so only the first call types it)."""
        self.b.get(self.base + "/ui/")
        if self.b.js("return document.getElementById('login').open"):
            self.b.wait_find("#secret").type(SECRET)
            self.b.find("#login-submit").click()
            self.b.wait(lambda: not self.b.js(
                "return document.getElementById('login').open"),
                what="the login dialog to close")

    def open(self, hash_):
        self.login()
        self.b.js("location.hash = arguments[0]", hash_)

    def confirm(self):
        """Answers the confirmation dialog with its OK button."""
        self.b.wait(lambda: self.b.js(
            "return document.getElementById('confirm').open"),
            what="the confirmation dialog")
        self.b.find("#confirm-ok").click()
        self.b.wait(lambda: not self.b.js(
            "return document.getElementById('confirm').open"),
            what="the confirmation dialog to close")

    def cancel(self):
        self.b.wait(lambda: self.b.js(
            "return document.getElementById('confirm').open"),
            what="the confirmation dialog")
        self.b.find("#confirm-cancel").click()

    def banner_clean(self):
        """No page-level error is shown."""
        t = self.b.js("var b = document.querySelector('main .banner');"
                      "return b ? b.textContent : ''")
        self.assertEqual(t, "")

    def paused(self, t):
        return self.r("EXISTS", "%s:jobs:%s:paused" % (NS, t)) == 1

    # --- flows ------------------------------------------------------------

    def test_login(self):
        self.b.get(self.base + "/ui/")
        self.b.js("sessionStorage.clear(); location.reload()")
        field = self.b.wait_find("#secret")
        self.shot("login")
        field.type("not-the-secret")
        self.b.find("#login-submit").click()
        self.b.wait_text("#login-error", "refused")
        self.assertTrue(self.b.js(
            "return document.getElementById('login').open"))
        field.clear()
        field.type(SECRET)
        self.b.find("#login-submit").click()
        self.b.wait(lambda: not self.b.js(
            "return document.getElementById('login').open"),
            what="the login dialog to close")
        # kept for the tab, never in a URL
        self.assertEqual(self.b.js(
            "return sessionStorage.getItem('berth.secret')"), SECRET)
        self.assertNotIn(SECRET, self.b.url)
        self.b.wait_text("#overview-cards", "Pools")
        self.b.wait_text("#main", "Throughput")
        # a secret the daemon refuses (rotated) asks again
        self.b.js("sessionStorage.setItem('berth.secret', 'stale');"
                  "location.reload()")
        self.b.wait_text("#login-error", "refused")
        self.b.find("#secret").type(SECRET)
        self.b.find("#login-submit").click()
        self.b.wait(lambda: not self.b.js(
            "return document.getElementById('login').open"),
            what="the login dialog to close")
        self.b.wait_text("#overview-cards", "Pending")

    def test_job_pending_to_success(self):
        # hold the type so that the job is seen Pending first
        self.r("SET", "%s:jobs:DEMO:paused" % NS, "1")
        try:
            jid = submit_ok(self.d, "DEMO", {"image": "demo-ui"})
            self.open("#/jobs?type=DEMO")
            self.b.wait_find('tr[data-job="%s"]' % jid)
            self.open("#/job/" + jid)
            self.b.wait_text("#job-summary", "Pending")
            self.shot("job-pending")
        finally:
            self.r("DEL", "%s:jobs:DEMO:paused" % NS)
        self.b.wait_text("#job-summary", "Running", timeout=20)
        self.b.wait_text("#job-summary", "Success", timeout=30)
        hist = self.b.js("return Array.from(document.querySelectorAll("
                         "'#job-history li[data-status]'))"
                         ".map(function (e) { return e.dataset.status; })")
        self.assertEqual(hist[0], "Pending")
        self.assertEqual(hist[-1], "Success")
        self.shot("job-success")
        self.banner_clean()

    def test_pause_resume_queue(self):
        self.assertFalse(self.paused("NOOP"))
        self.open("#/queues")
        row = 'tr[data-type="NOOP"]'
        self.b.wait_find(row + ' button[data-action="pause"]').click()
        self.cancel()   # a cancelled confirmation changes nothing
        time.sleep(0.3)
        self.assertFalse(self.paused("NOOP"))
        self.b.find(row + ' button[data-action="pause"]').click()
        self.confirm()
        wait_for(lambda: self.paused("NOOP"), what="NOOP paused in Redis")
        self.b.wait_find(row + ' button[data-action="resume"]')
        self.b.wait_text(row, "Paused")
        self.shot("queues-paused")
        self.b.find(row + ' button[data-action="resume"]').click()
        wait_for(lambda: not self.paused("NOOP"),
                 what="NOOP resumed in Redis")
        self.b.wait_find(row + ' button[data-action="pause"]')
        self.banner_clean()

    def test_follow_log(self):
        jid = submit_ok(self.d, "DEMO", {"image": "demo-follow"})
        self.open("#/job/" + jid)
        # lines arrive while the job still runs (DEMO holds 1 + 3 s)
        self.b.wait_text("#job-log", "Demo job starting", timeout=15)
        self.assertEqual(job(self.d, jid)["status"], "Running")
        self.assertIn("following", self.b.find("#log-state").text)
        self.b.wait_text("#job-checkin", "progress data", timeout=10)
        self.b.js("document.getElementById('job-log').scrollIntoView()")
        self.shot("job-log-follow")
        self.b.wait_text("#job-log", "finished with status Success",
                         timeout=30)
        self.b.wait_text("#job-summary", "Success", timeout=10)
        self.banner_clean()

    def dead_ids(self):
        return [json.loads(m)["id"]
                for m in self.r("ZRANGE", NS + ":dead", 0, -1) or []]

    def test_retry_and_delete_dead_jobs(self):
        counter = os.path.join(self.c.path, "flaky-ui")
        jid = submit_ok(self.d, "FLAKY", {"fail_times": 1,
                                          "counter_file": counter})
        gone = submit_ok(self.d, "FLAKY", {"fail_times": 5})
        # max_fails 1: the first failure is final and goes to the dead set
        for j in (jid, gone):
            wait_status(self.d, j, "Error")
        wait_for(lambda: {jid, gone} <= set(self.dead_ids()),
                 what="the jobs in the dead set")
        self.open("#/dead")
        row = 'tr[data-job="%s"]' % jid
        self.b.wait_find(row)
        self.b.wait_find('tr[data-job="%s"]' % gone)
        self.shot("dead")
        self.b.find(row + ' button[data-action="retry"]').click()
        self.confirm()
        wait_status(self.d, jid, "Success", timeout=30)
        self.assertEqual(os.path.getsize(counter), 2)
        self.b.wait(lambda: self.b.find(row) is None,
                    what="the job to leave the dead page")
        # delete: the message leaves the set, the stats keep Error
        self.b.find('tr[data-job="%s"] button[data-action="delete"]'
                    % gone).click()
        self.confirm()
        wait_for(lambda: gone not in self.dead_ids(),
                 what="the deleted job out of the dead set")
        self.b.wait(lambda: self.b.find('tr[data-job="%s"]' % gone) is None,
                    what="the deleted job to leave the page")
        self.assertEqual(job(self.d, gone)["status"], "Error")
        self.banner_clean()

    def test_parameters_are_text(self):
        evil = {
            "script": "<script>window.__pwned = 1</script>",
            "img": "<img src=x onerror=\"window.__pwned = 2\">",
            "attr": "\"><b id=injected>bold</b>",
        }
        jid = submit_ok(self.d, "NOOP", evil)
        wait_status(self.d, jid, "Success")
        # the job list shows the parameters cut to 80 characters (keys
        # sorted, as Go writes a map)
        self.open("#/jobs?type=NOOP")
        self.b.wait_text('tr[data-job="%s"]' % jid,
                         '{"attr":"\\"><b id=injected>bold</b>",'
                         '"img":"<img src=x onerror=')
        self.no_markup()
        # the detail page shows them whole
        self.open("#/job/" + jid)
        text = self.b.wait_text("#job-params", "onerror")
        self.assertIn('"script": "<script>window.__pwned = 1</script>"',
                      text)
        self.assertIn('"img": "<img src=x onerror=\\"window.__pwned = 2'
                      '\\">"', text)
        self.assertIn('"attr": "\\"><b id=injected>bold</b>"', text)
        self.no_markup()
        self.shot("job-html-params")

    def no_markup(self):
        """No element came out of a parameter, and none of its scripts
        ran."""
        self.assertEqual(self.b.js(
            "return document.querySelectorAll("
            "'main script, main img, main b, #injected').length"), 0)
        self.assertIsNone(self.b.js("return window.__pwned"))

    def chart_bars(self):
        return self.b.js(
            "return Array.from(document.querySelectorAll("
            "'#chart svg rect.bar')).map(function (e) { return {"
            "t: +e.dataset.t, finished: +e.dataset.finished,"
            "error: +e.dataset.error, partial: e.classList.contains("
            "'partial'), title: e.textContent}; })")

    def test_chart_from_daemon_history(self):
        """Runs that finished before the dashboard was opened are in
        the chart of a fresh tab at once: the daemon keeps the history,
        the browser nothing."""
        ok = [submit_ok(self.d, "NOOP", {"chart": i}) for i in range(3)]
        bad = submit_ok(self.d, "FLAKY", {"fail_times": 5})
        for j in ok:
            wait_status(self.d, j, "Success")
        wait_status(self.d, bad, "Error")
        st, _, doc = self.d.json("GET", "/api/v1/metrics/history")
        self.assertEqual(st, 200, doc)
        finished = sum(b["success"] + b["error"] + b["stopped"]
                       for b in doc["buckets"])
        self.assertGreaterEqual(finished, 4)
        # a fresh tab: nothing kept in the browser, signed in again
        self.b.get(self.base + "/ui/")
        self.b.js("sessionStorage.clear(); localStorage.clear();"
                  "location.hash = '#/overview'; location.reload()")
        self.b.wait_find("#secret")
        self.assertEqual(self.b.js("return sessionStorage.length"), 0)
        self.login()
        # well before a browser-side sampler (5 s apart) could have drawn
        # anything
        t0 = time.monotonic()
        self.b.wait(lambda: sum(b["finished"] for b in self.chart_bars())
                    >= finished, timeout=3,
                    what="the finished runs in the chart")
        self.assertLess(time.monotonic() - t0, 3)
        bars = self.chart_bars()
        self.assertEqual(len(bars), 15)
        ts = [b["t"] for b in bars]
        self.assertEqual(ts, list(range(ts[0], ts[0] + 15 * 60, 60)))
        self.assertEqual([b["partial"] for b in bars], [False] * 14 + [True])
        self.assertGreaterEqual(sum(b["error"] for b in bars), 1)
        # the failure rate: a dot for each minute in which runs finished
        dots = self.b.js("return document.querySelectorAll("
                         "'#chart svg circle.fail-dot').length")
        self.assertEqual(dots, len([b for b in bars if b["finished"]]))
        self.assertEqual(self.b.js("return document.querySelectorAll("
                                   "'#chart svg polyline.fail').length"), 1)
        busiest = max(bars, key=lambda b: b["finished"])
        self.assertIn("%d finished" % busiest["finished"], busiest["title"])
        self.assertIn("last 5 min: ", self.b.text_of("#chart .legend"))
        self.shot("overview-history")
        self.banner_clean()

    def test_every_page(self):
        """Each page renders without an error banner; one screenshot
        each (the README's pictures)."""
        submit_ok(self.d, "NOOP", {"tour": True})
        busy = submit_ok(self.d, "DEMO", {"image": "demo-tour"})
        wait_status(self.d, busy, "Running")
        st, _, doc = self.d.json("POST", "/api/v1/jobs", {"job": {
            "name": "NOOP", "parameters": {"tour": "periodic"},
            "metadata": {"kind": "Periodic", "cron_spec": "0 0 3 * * *",
                         "unique": True}}})
        self.assertEqual(st, 202, doc)
        pages = [("queues", "#main", "DEMO"),
                 ("pools", "#main", busy),
                 ("jobs", "#main", "NOOP"),
                 ("periodic", "#main", "0 0 3 * * *"),
                 ("retries", "#main", "Retries"),
                 ("dead", "#main", "Dead jobs"),
                 ("plugins", "#main", "FLAKY"),
                 ("overview", "#overview-cards", "Pools")]
        for name, css, text in pages:
            self.open("#/" + name)
            self.b.wait_text(css, text)
            if name == "overview":
                # one bar per minute of the daemon's history
                self.b.wait(lambda: self.b.js(
                    "return document.querySelectorAll("
                    "'#chart svg rect.bar').length") == 15,
                    what="the chart's 15 bars")
            time.sleep(0.3)
            self.banner_clean()
            self.shot("page-" + name)
        # the plugins page reloads after a confirmation
        self.open("#/plugins")
        self.b.wait_find('button[data-action="reload"]').click()
        self.confirm()
        self.b.wait_text("#notices", "reloaded")
        # the periodic page lists the policy's next fire times, and its
        # executions on demand
        pid = doc["job"]["id"]
        self.open("#/periodic")
        row = 'tr[data-policy="%s"]' % pid
        self.assertEqual(
            self.b.wait_text(row, "03:00:00").count("03:00:00"), 3)
        self.b.find(row + " a.btn").click()
        self.b.wait_text("#main", "Executions of " + pid)



class StaticFilesTests(unittest.TestCase):
    """/ui/ over plain HTTP: what the daemon sends with the files."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS, config=config)
        cls.d = cls.c.start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_files_and_headers(self):
        seen = {}
        for path, ctype in (("/ui/", "text/html"), ("/ui", "text/html"),
                            ("/ui/index.html", "text/html"),
                            ("/ui/app.js", "text/javascript"),
                            ("/ui/style.css", "text/css"),
                            ("/ui/favicon.svg", "image/svg+xml")):
            st, h, body = self.d.request("GET", path, auth=False)
            self.assertEqual(st, 200, path)
            self.assertTrue(h["Content-Type"].startswith(ctype), h)
            self.assertEqual(int(h["Content-Length"]), len(body))
            self.assertRegex(h["ETag"], r'^"[0-9a-f]{16}"$')
            self.assertEqual(h["Cache-Control"], "no-cache")
            self.assertEqual(h["X-Content-Type-Options"], "nosniff")
            csp = h["Content-Security-Policy"]
            for d in ("default-src 'self'", "script-src 'self'",
                      "object-src 'none'", "frame-ancestors 'none'"):
                self.assertIn(d, csp)
            self.assertNotIn("unsafe", csp)
            seen[path] = body
        self.assertEqual(seen["/ui/"], seen["/ui"])
        page = seen["/ui/"].decode()
        # no inline script or style for the CSP to refuse, nothing remote
        self.assertNotRegex(page, r"<script(?![^>]*\bsrc=)")
        self.assertNotIn("style=", page)
        self.assertNotIn("<style", page)
        self.assertNotRegex(page + seen["/ui/app.js"].decode(),
                            r"https?://(?!www\.w3\.org/2000/svg)")
        # the page makes no markup out of strings
        self.assertIsNone(re.search(
            r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|"
            r"document\.write|\beval\(|new Function",
            seen["/ui/app.js"].decode()))

    def test_conditional_head_and_errors(self):
        st, h, body = self.d.request("GET", "/ui/app.js", auth=False)
        etag = h["ETag"]
        st, h2, body2 = self.d.request("GET", "/ui/app.js", auth=False,
                                       headers={"If-None-Match": etag})
        self.assertEqual((st, body2), (304, b""))
        self.assertEqual(h2["ETag"], etag)
        st, h3, body3 = self.d.request("HEAD", "/ui/app.js", auth=False)
        self.assertEqual((st, body3), (200, b""))
        self.assertEqual(int(h3["Content-Length"]), len(body))
        for path in ("/ui/missing.js", "/ui/a/b", "/ui/embed.cmake"):
            st, _, _ = self.d.request("GET", path, auth=False)
            self.assertEqual(st, 404, path)
        # a path civetweb resolves out of /ui is the API's (and needs auth)
        for path in ("/ui/..%2fui.cmake", "/ui/%2e%2e/README.md"):
            st, _, _ = self.d.request("GET", path, auth=False)
            self.assertEqual(st, 401, path)
        st, h, _ = self.d.request("POST", "/ui/", body="x", auth=False)
        self.assertEqual((st, h.get("Allow")), (405, "GET, HEAD"))
        # only /ui and below are open: the API keeps its auth
        for path in ("/uix", "/api/v1/metrics", "/ui/../api/v1/jobs"):
            st, _, _ = self.d.request("GET", path, auth=False)
            self.assertEqual(st, 401, path)

    def test_metrics_route(self):
        submit_ok(self.d, "NOOP", {})
        def counted():
            st, h, body = self.d.request("GET", "/api/v1/metrics")
            self.assertEqual(st, 200)
            self.assertTrue(h["Content-Type"].startswith("text/plain"))
            return ('harbor_jobservice_task_total{status="success",'
                    'type="NOOP"} 1') in body.decode()
        wait_for(counted, what="the NOOP run in /api/v1/metrics")


if __name__ == "__main__":
    unittest.main()
