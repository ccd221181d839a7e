"""The bundled HTTP job plugins over a real berthd and a real Redis:
WEBHOOK, SLACK and SCHEDULER (with its legacy aliases), against local
receivers (receivers.py) on 127.0.0.1 port 0.

Three daemons share one redis-server, each with its own namespace:
  A  defaults, JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT=1,
     HTTP_PROXY/HTTPS_PROXY pointing at the test's forward proxy, NO_PROXY=""
  B  WEBHOOK with hmac_secret_env, follow_redirects and
     max_response_bytes 16; JOBSERVICE_WEBHOOK_JOB_MAX_RETRY=5;
     NO_PROXY=.berth-test.invalid
  C  block_private_addresses on; JOBSERVICE_WEBHOOK_JOB_MAX_RETRY=0;
     HTTP_PROXY pointing at the forward proxy, NO_PROXY=""

Hosts under .berth-test.invalid do not resolve locally; only the proxy maps
them to 127.0.0.1, so a request that reaches the receiver through such a
name went through the proxy. Loopback addresses are never proxied (Go's
rule), so every other test talks to 127.0.0.1 directly.

The SCHEDULER check-in is also checked at a real status-hook receiver."""
import hashlib
import hmac
import json
import os
import time
import unittest

from harness import (PLUGINS, Berthd, RedisServer, TempDir, exhaust_retries,
                     job, job_log_lines, plugin_limits, retry_entries,
                     run_error, run_ok, sanitizer_lines, stop_job, submit,
                     submit_ok, wait_for, wait_job_line, wait_status)
from receivers import (TEST_DOMAIN, ForwardProxy, Receiver, closed_port,
                       make_cert)

HMAC_SECRET = "test-hmac-secret"
SCHEDULER_NAMES = ["SCHEDULER", "IMAGE_REPLICATE", "IMAGE_GC",
                   "IMAGE_SCAN_ALL"]


def manifest(webhook_settings="{}", slack_settings="{}"):
    entries = ["plugin_dir: \"%s\"" % PLUGINS, "plugins:"]
    for n in SCHEDULER_NAMES:
        entries += ["  - name: %s" % n, "    file: scheduler.so"]
    entries += ["  - name: WEBHOOK", "    file: webhook.so",
                "    settings: %s" % webhook_settings,
                "  - name: SLACK", "    file: slack.so",
                "    settings: %s" % slack_settings]
    return "\n".join(entries) + "\n"


def config(redis_sock, ns, data_dir, manifest_path):
    return """protocol: "http"
port: 8080
worker_pool:
  workers: 6
  backend: "redis"
  redis_pool:
    redis_url: "%s"
    namespace: "%s"
job_loggers:
  - name: "STD_OUTPUT"
    level: "INFO"
loggers:
  - name: "STD_OUTPUT"
    level: "INFO"
berth:
  data_dir: "%s"
  plugin_manifest: "%s"
  listen_address: "127.0.0.1"
  stop_grace_seconds: 1
  shutdown_grace_seconds: 2
""" % (redis_sock, ns, data_dir, manifest_path)


# --- module fixtures: one redis, receivers, a proxy, three daemons -------

TMP = REDIS = HTTP = HTTPS = PROXY = None
NODES = {}
CLEAN_ENV = {"HTTP_PROXY": None, "http_proxy": None, "HTTPS_PROXY": None,
             "https_proxy": None, "NO_PROXY": None, "no_proxy": None,
             "ALL_PROXY": None, "all_proxy": None,
             "JOBSERVICE_WEBHOOK_JOB_MAX_RETRY": None,
             "JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT": None}


class Node:
    """One berthd on the shared redis, in its own namespace."""

    def __init__(self, name, env, webhook="{}", slack="{}"):
        self.ns = "{berth_http_%s}" % name
        d = os.path.join(TMP.path, name)
        os.makedirs(d, exist_ok=True)
        mpath = os.path.join(d, "plugins.yml")
        with open(mpath, "w") as f:
            f.write(manifest(webhook, slack))
        e = dict(CLEAN_ENV)
        e.update(env)
        self.d = Berthd(d, config(REDIS.sock, self.ns[1:-1],
                                  os.path.join(d, "data"), mpath),
                        env=e).start()
        self.r = REDIS.client()

    def close(self):
        self.r.close()
        rc = self.d.stop()
        return rc

    # the harness helpers, on this node's daemon, Redis and namespace
    def run_ok(self, name, params=None):
        return run_ok(self.d, name, params)

    def run_error(self, name, params, text):
        return run_error(self.d, self.r, name, params, text, self.ns)

    def retry_entries(self, jid):
        return retry_entries(self.r, jid, self.ns)

    def exhaust_retries(self, jid, attempts, expected):
        exhaust_retries(self.d, self.r, jid, attempts, expected, self.ns)

    def lines(self, jid):
        return job_log_lines(self.d, jid)

    def wait_line(self, jid, text, timeout=10):
        return wait_job_line(self.d, jid, text, timeout)


def node(name):
    if name not in NODES:
        if name == "a":
            NODES[name] = Node("a", {
                "JOBSERVICE_WEBHOOK_JOB_HTTP_CLIENT_TIMEOUT": "1",
                # credentials must never reach a log; a value without a
                # scheme means http:// (Go's rule)
                "HTTP_PROXY": PROXY.url.replace("://", "://puser:proxypass@"),
                "HTTPS_PROXY": PROXY.url[len("http://"):],
                "NO_PROXY": "", "no_proxy": ""})
        elif name == "b":
            NODES[name] = Node("b", {
                "JOBSERVICE_WEBHOOK_JOB_MAX_RETRY": "5",
                "HTTP_PROXY": PROXY.url, "NO_PROXY": TEST_DOMAIN,
                "BERTH_TEST_HMAC": HMAC_SECRET},
                webhook='{"hmac_secret_env": "BERTH_TEST_HMAC", '
                        '"follow_redirects": true, '
                        '"max_response_bytes": 16}')
        else:
            NODES[name] = Node("c", {
                "JOBSERVICE_WEBHOOK_JOB_MAX_RETRY": "0",
                "HTTP_PROXY": PROXY.url, "NO_PROXY": ""},
                webhook='{"block_private_addresses": true}',
                slack='{"block_private_addresses": true}')
    return NODES[name]


def setUpModule():
    global TMP, REDIS, HTTP, HTTPS, PROXY
    TMP = TempDir()
    REDIS = RedisServer(TMP.path).start()
    cert, key = make_cert(TMP.path)
    HTTP = Receiver().start()
    HTTPS = Receiver(cert, key).start()
    PROXY = ForwardProxy().start()


def tearDownModule():
    problems = []
    for n in NODES.values():    # all shut down at once
        n.d.terminate()
    for name, n in sorted(NODES.items()):
        rc = n.close()
        bad = sanitizer_lines(n.d.log())
        if rc != 0 or bad:
            problems.append("berthd %s: exit %s %s" % (name, rc, bad[:5]))
    NODES.clear()
    for p in (HTTP, HTTPS, PROXY):
        if p:
            p.stop()
    if REDIS:
        REDIS.stop()
    if TMP:
        TMP.cleanup()
    if problems:
        raise AssertionError("; ".join(problems))


# --- WEBHOOK on A ---------------------------------------------------------

class WebhookTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n = node("a")

    def test_success_headers_and_log(self):
        HTTP.on("/wh/ok/s3cr3t-path", [(204, {}, b"")])
        url = HTTP.url("/wh/ok/s3cr3t-path?token=s3cr3t-query").replace(
            "://", "://user:pa55word@")
        payload = '{"type":"PUSH_ARTIFACT","marker":"PAYLOAD-MARKER"}'
        jid = self.n.run_ok("WEBHOOK",
                     {"payload": payload, "address": url})
        (req,) = HTTP.requests("/wh/ok/s3cr3t-path")
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.body, payload.encode())
        self.assertEqual(req.query, "token=s3cr3t-query")
        # Go's http.NewRequest + Do: no Content-Type without `header`;
        # credentials of the URL become Basic auth, as in Go
        self.assertEqual(req.names(), ["authorization", "content-length",
                                       "host", "user-agent"])
        self.assertEqual(req.header("Host"), "127.0.0.1:%d" % HTTP.port)
        self.assertTrue(req.header("Authorization").startswith("Basic "))
        self.assertTrue(req.header("User-Agent").startswith("berth-webhook"))
        ls = self.n.wait_line(jid, "HTTP 204")
        self.assertIn("POST http://127.0.0.1:%d: HTTP 204" % HTTP.port,
                      ls[0])
        self.assertRegex(ls[0], r"in \d+ ms, sent %d bytes, received 0 "
                                r"bytes" % len(payload))
        log = "\n".join(self.n.lines(jid))
        for secret in ("pa55word", "s3cr3t-path", "s3cr3t-query",
                       "PAYLOAD-MARKER"):
            self.assertNotIn(secret, log)

    def test_non_2xx_error_text(self):
        HTTP.on("/wh/500", [(500, {}, b"internal boom")])
        _, line = self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTP.url("/wh/500")},
            "abnormal response code: 500, body: internal boom")
        self.assertTrue(line)
        self.assertIn("abnormal response code: 500, body: internal boom",
                      self.n.d.log())

    def test_error_body_is_bounded(self):
        HTTP.on("/wh/long", [(502, {}, b"y" * 2000)])
        _, line = self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTP.url("/wh/long")},
            "abnormal response code: 502, body: ")
        self.assertIn("body: " + "y" * 512 + "... (truncated)", line[0])
        self.assertNotIn("y" * 513, line[0])

    def test_timeout(self):
        HTTP.on("/wh/slow", [(200, {}, b"late")], delay=2.5)
        t0 = time.monotonic()
        jid, line = self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTP.url("/wh/slow")},
            "timeout after 1000 ms")
        self.assertIn("error to send request: POST http://127.0.0.1:%d: "
                      "timeout after 1000 ms" % HTTP.port, line[0])
        self.assertEqual(HTTP.count("/wh/slow"), 1)
        self.assertLess(time.monotonic() - t0, 15)

    def test_connection_refused(self):
        port = closed_port()
        _, line = self.n.run_error("WEBHOOK", {
            "payload": "x", "address": "http://127.0.0.1:%d/x" % port},
            "error to send request: POST http://127.0.0.1:%d: " % port)
        self.assertRegex(line[0], "(?i)connect")

    def test_redirect_is_not_followed(self):
        HTTP.on("/wh/moved", [(302, {"Location": "/wh/target"}, b"moved")])
        self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTP.url("/wh/moved")},
            "abnormal response code: 302, body: moved")
        self.assertEqual(HTTP.count("/wh/target"), 0)

    def test_header_replaces_all_headers(self):
        header = {"Content-Type": ["application/cloudevents+json"],
                  "X-Multi": ["one", "two"], "X-Empty": [""],
                  "Authorization": ["Bearer tok"], "Host": ["evil.example"],
                  "X-Null": None, "X-None": []}
        self.n.run_ok("WEBHOOK", {
            "payload": "{}", "address": HTTP.url("/wh/hdr"),
            "header": json.dumps(header)})
        (req,) = HTTP.requests("/wh/hdr")
        self.assertEqual(req.names(), [
            "authorization", "content-length", "content-type", "host",
            "user-agent", "x-empty", "x-multi", "x-multi"])
        self.assertEqual(req.header("Content-Type"),
                         "application/cloudevents+json")
        self.assertEqual([v for k, v in req.headers if k == "X-Multi"],
                         ["one", "two"])
        self.assertEqual(req.header("X-Empty"), "")
        self.assertEqual(req.header("Host"), "127.0.0.1:%d" % HTTP.port)

    def test_header_go_decoding_rules(self):
        # a repeated name replaces the earlier one (even a bad earlier
        # value), null items are "", a later null removes the name
        self.n.run_ok("WEBHOOK", {
            "payload": "{}", "address": HTTP.url("/wh/dup"),
            "header": '{"X-A":["bad\\r\\n"],"X-A":["good"],'
                      '"X-B":["1"],"X-B":null,"X-C":[null,"c"]}'})
        (req,) = HTTP.requests("/wh/dup")
        self.assertEqual([v for k, v in req.headers if k == "X-A"],
                         ["good"])
        self.assertIsNone(req.header("X-B"))
        self.assertEqual([v for k, v in req.headers if k == "X-C"],
                         ["", "c"])

    def test_bad_header_and_params_fail_at_run(self):
        # Harbor's WEBHOOK validate accepts anything; run() fails
        cases = [
            ({"payload": "x", "address": HTTP.url("/wh/bad"),
              "header": "not json"}, "error to unmarshal header: "),
            ({"payload": "x", "address": HTTP.url("/wh/bad"),
              "header": '{"X":"v"}'},
             "cannot unmarshal string into Go value of type []string"),
            ({"payload": "x", "address": HTTP.url("/wh/bad"),
              "header": '{"X":[1]}'},
             "cannot unmarshal number into Go value of type string"),
            ({"payload": "x", "address": HTTP.url("/wh/bad"),
              "header": '["X"]'}, "error to unmarshal header: "),
            ({"payload": "x", "address": HTTP.url("/wh/bad"),
              "header": '{"X":["a\\u0000b"]}'},
             "invalid header field value"),
            ({"payload": "x", "address": HTTP.url("/wh/bad"),
              "header": '{"Bad Name":["v"]}'}, "invalid header field name"),
            ({"payload": "x", "address": HTTP.url("/wh/bad"),
              "header": '{"X":["a\\r\\nInjected: 1"]}'},
             'invalid header field value for "X"'),
            ({"payload": "x"}, "missing job parameter 'address'"),
            ({"address": HTTP.url("/wh/bad"), "payload": 7},
             "malformed job parameter 'payload', expecting string but got "
             "float64"),
            ({"payload": "x", "address": "file:///etc/passwd"},
             'unsupported protocol scheme "file"'),
        ]
        for params, text in cases:
            with self.subTest(text=text):
                self.n.run_error("WEBHOOK", params, text)
        self.assertEqual(HTTP.count("/wh/bad"), 0)

    def test_https_verifies_certificates(self):
        HTTPS.on("/wh/tls", [(200, {}, b"ok")])
        _, line = self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTPS.url("/wh/tls")},
            "error to send request: POST https://127.0.0.1:%d: "
            % HTTPS.port)
        self.assertRegex(line[0], "(?i)certificate")
        self.assertEqual(HTTPS.count("/wh/tls"), 0)

    def test_https_skip_cert_verify(self):
        HTTPS.on("/wh/tls-skip", [(201, {}, b"created")])
        self.n.run_ok("WEBHOOK", {
            "payload": "secure", "address": HTTPS.url("/wh/tls-skip"),
            "skip_cert_verify": True})
        (req,) = HTTPS.requests("/wh/tls-skip")
        self.assertEqual(req.body, b"secure")

    def test_http_proxy_from_uppercase_env(self):
        host = "receiver" + TEST_DOMAIN
        jid = self.n.run_ok("WEBHOOK", {
            "payload": "via proxy", "address": HTTP.url("/wh/proxied",
                                                         host=host)})
        seen = PROXY.seen(lambda m, t, h: "/wh/proxied" in t)
        self.assertEqual([(m, t) for m, t, _ in seen], [
            ("POST", "http://%s:%d/wh/proxied" % (host, HTTP.port))])
        self.assertIn("proxy-authorization",
                      [k.lower() for k, _ in seen[0][2]])
        (req,) = HTTP.requests("/wh/proxied")
        self.assertEqual(req.body, b"via proxy")
        self.n.wait_line(jid, "POST http://%s:%d via proxy %s: HTTP 200"
                  % (host, HTTP.port, PROXY.url))
        self.assertNotIn("proxypass", self.n.d.log())

    def test_https_proxy_connect(self):
        host = "tls" + TEST_DOMAIN
        HTTPS.on("/wh/tunnel", [(200, {}, b"ok")])
        self.n.run_ok("WEBHOOK", {
            "payload": "tunnelled", "skip_cert_verify": True,
            "address": HTTPS.url("/wh/tunnel", host=host)})
        self.assertEqual(
            [(m, t) for m, t, _ in PROXY.seen(lambda m, t, h: host in t)],
            [("CONNECT", "%s:%d" % (host, HTTPS.port))])
        self.assertEqual(HTTPS.requests("/wh/tunnel")[0].body, b"tunnelled")

    def test_loopback_is_never_proxied(self):
        self.n.run_ok("WEBHOOK", {
            "payload": "direct", "address": HTTP.url("/wh/direct")})
        self.assertEqual(PROXY.seen(lambda m, t, h: "/wh/direct" in t), [])
        self.assertEqual(HTTP.count("/wh/direct"), 1)

    def test_retries_exactly_max_fails(self):
        HTTP.on("/wh/always500", [(500, {}, b"no")])
        jid = submit_ok(self.n.d, "WEBHOOK", {
            "payload": "r", "address": HTTP.url("/wh/always500")})
        self.n.exhaust_retries(jid, lambda: HTTP.count("/wh/always500"), 3)


# --- SLACK on A -----------------------------------------------------------

class SlackTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n = node("a")

    def test_validate_is_harbors(self):
        cases = [
            ({}, "missing job parameter 'payload'"),
            ({"payload": "{}"}, "missing job parameter 'address'"),
            ({"payload": 1, "address": "http://x"},
             "malformed job parameter 'payload', expecting string but got "
             "float64"),
            ({"payload": "{}", "address": ["x"]},
             "malformed job parameter 'address', expecting string but got "
             "[]interface {}"),
            ({"payload": "{}", "address": None},
             "malformed job parameter 'address', expecting string but got "
             "<nil>"),
        ]
        for params, text in cases:
            st, _, doc = submit(self.n.d, "SLACK", params)
            self.assertEqual((st, doc["code"], doc["details"]),
                             (400, 10013, text))

    def test_success_sends_json(self):
        payload = '{"text":"hello"}'
        self.n.run_ok("SLACK", {"payload": payload,
                                       "address": HTTP.url("/sl/ok")})
        (req,) = HTTP.requests("/sl/ok")
        self.assertEqual(req.body, payload.encode())
        self.assertEqual(req.header("Content-Type"), "application/json")
        self.assertEqual(req.names(), ["content-length", "content-type",
                                       "host", "user-agent"])

    def test_429_retry_after_within_one_attempt(self):
        HTTP.on("/sl/429", [(429, {"Retry-After": "1"}, b"rate_limited"),
                            (200, {}, b"ok")])
        jid = self.n.run_ok("SLACK", {"payload": "{}",
                                             "address": HTTP.url("/sl/429")})
        reqs = HTTP.requests("/sl/429")
        self.assertEqual(len(reqs), 2)
        self.assertGreaterEqual(reqs[1].start - reqs[0].start, 0.99)
        self.assertEqual(len([l for l in self.n.lines(jid)
                              if "starting, revision" in l]), 1)
        self.n.wait_line(jid, "rate limited: waiting 1 s")
        self.assertEqual(self.n.retry_entries(jid), [])

    def test_retry_after_beyond_the_bound_fails_at_once(self):
        HTTP.on("/sl/429-long", [(429, {"Retry-After": "120"}, b"later")])
        jid, _ = self.n.run_error("SLACK", {
            "payload": "{}", "address": HTTP.url("/sl/429-long")},
            "abnormal response code: 429, body: later")
        self.n.wait_line(jid, "giving up this attempt")
        self.assertEqual(HTTP.count("/sl/429-long"), 1)

    def test_stop_while_waiting_for_retry_after(self):
        HTTP.on("/sl/429-stop", [(429, {"Retry-After": "30"}, b"wait")])
        st, _, doc = submit(self.n.d, "SLACK", {
            "payload": "{}", "address": HTTP.url("/sl/429-stop")})
        jid = doc["job"]["id"]
        self.n.wait_line(jid, "rate limited: waiting 30 s")
        t0 = time.monotonic()
        self.assertEqual(stop_job(self.n.d, jid), 204)
        self.n.wait_line(jid, "stopped while sending", timeout=5)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(job(self.n.d, jid)["status"], "Stopped")
        self.assertEqual(HTTP.count("/sl/429-stop"), 1)

    def test_concurrency_one_and_per_address_spacing(self):
        # a burst to five addresses: max_concurrency 1 serialises them
        for i in range(5):
            HTTP.on("/sl/burst/%d" % i, [(200, {}, b"ok")], delay=0.3)
        ids = []
        for i in range(5):
            st, _, doc = submit(self.n.d, "SLACK", {
                "payload": "{}", "address": HTTP.url("/sl/burst/%d" % i)})
            self.assertEqual(st, 202, doc)
            ids.append(doc["job"]["id"])
        for jid in ids:
            wait_status(self.n.d, jid, "Success", timeout=30)
        reqs = sorted((r for i in range(5)
                       for r in HTTP.requests("/sl/burst/%d" % i)),
                      key=lambda r: r.start)
        self.assertEqual(len(reqs), 5)
        for a, b in zip(reqs, reqs[1:]):
            self.assertGreaterEqual(b.start, a.end, "overlapping requests")
        # three messages to one address: at least 1 s apart
        ids = []
        for _ in range(3):
            st, _, doc = submit(self.n.d, "SLACK", {
                "payload": "{}", "address": HTTP.url("/sl/paced")})
            ids.append(doc["job"]["id"])
        for jid in ids:
            wait_status(self.n.d, jid, "Success", timeout=30)
        starts = [r.start for r in HTTP.requests("/sl/paced")]
        self.assertEqual(len(starts), 3)
        for a, b in zip(starts, starts[1:]):
            self.assertGreaterEqual(b - a, 0.995)

    def test_retries_exactly_max_fails(self):
        HTTP.on("/sl/always500", [(500, {}, b"no")])
        jid = submit_ok(self.n.d, "SLACK", {
            "payload": "{}", "address": HTTP.url("/sl/always500")})
        self.n.exhaust_retries(jid, lambda: HTTP.count("/sl/always500"), 3)
        self.assertIn("abnormal response code: 500, body: no",
                      "\n".join(self.n.lines(jid)))


# --- SCHEDULER and limits on A -------------------------------------------

class SchedulerTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n = node("a")

    def test_limits_per_spec_13_1(self):
        limits = plugin_limits(self.n.d)
        for name in SCHEDULER_NAMES:
            self.assertEqual(limits[name], (3, 0, 1000), name)
        self.assertEqual(limits["WEBHOOK"], (3, 0, 1000))
        self.assertEqual(limits["SLACK"], (3, 1, 1))

    def test_every_name_checks_in_and_succeeds(self):
        for name in SCHEDULER_NAMES:
            st, _, doc = submit(self.n.d, name)
            self.assertEqual(st, 202, doc)
            done = wait_status(self.n.d, doc["job"]["id"], "Success")
            self.assertGreater(done["check_in_at"], 0, name)

    def test_checkin_reaches_the_status_hook(self):
        HTTP.on("/hook/sched", [(200, {}, b"")])
        st, _, doc = submit(self.n.d, "SCHEDULER",
                            hook=HTTP.url("/hook/sched"))
        self.assertEqual(st, 202, doc)
        jid = doc["job"]["id"]
        wait_status(self.n.d, jid, "Success")

        def checkin():
            for r in HTTP.requests("/hook/sched"):
                ev = json.loads(r.body)
                if ev.get("check_in") == "checkin":
                    return ev
            return None
        ev = wait_for(checkin, what="check-in event")
        self.assertEqual(ev["job_id"], jid)
        self.assertEqual(ev["status"], "Running")
        self.assertEqual(ev["metadata"]["check_in"], "checkin")
        self.assertGreater(ev["metadata"]["check_in_at"], 0)


# --- hardening settings on B ---------------------------------------------

class HardenedTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n = node("b")

    def test_max_fails_from_env(self):
        limits = plugin_limits(self.n.d)
        self.assertEqual(limits["WEBHOOK"], (5, 0, 1000))
        self.assertEqual(limits["SLACK"], (5, 1, 1))

    def test_hmac_signature(self):
        payload = '{"event":"signed","n":1}'
        self.n.run_ok("WEBHOOK", {
            "payload": payload, "address": HTTP.url("/b/signed"),
            "header": '{"X-Custom":["kept"]}'})
        (req,) = HTTP.requests("/b/signed")
        want = "sha256=" + hmac.new(HMAC_SECRET.encode(), req.body,
                                    hashlib.sha256).hexdigest()
        self.assertEqual(req.body, payload.encode())
        self.assertTrue(hmac.compare_digest(
            req.header("X-Berth-Signature"), want))
        self.assertEqual(req.header("X-Custom"), "kept")
        self.assertNotIn(HMAC_SECRET, self.n.d.log())

    def test_redirects_followed(self):
        HTTP.on("/b/r307", [(307, {"Location": "/b/t307"}, b"")])
        HTTP.on("/b/r302", [(302, {"Location": HTTP.url("/b/t302")}, b"")])
        jid = self.n.run_ok("WEBHOOK", {
            "payload": "again", "address": HTTP.url("/b/r307")})
        (req,) = HTTP.requests("/b/t307")
        self.assertEqual((req.method, req.body), ("POST", b"again"))
        self.n.wait_line(jid, "HTTP 200 after 1 redirect(s)")
        self.n.run_ok("WEBHOOK", {
            "payload": "dropped", "address": HTTP.url("/b/r302")})
        (req,) = HTTP.requests("/b/t302")
        self.assertEqual((req.method, req.body), ("GET", b""))

    def test_stop_while_sending(self):
        # B keeps the default 3 s timeout: stop lands mid-request
        HTTP.on("/b/slow", [(200, {}, b"late")], delay=2.8)
        st, _, doc = submit(self.n.d, "WEBHOOK", {
            "payload": "x", "address": HTTP.url("/b/slow")})
        jid = doc["job"]["id"]
        wait_for(lambda: HTTP.count("/b/slow"), what="request")
        t0 = time.monotonic()
        self.assertEqual(stop_job(self.n.d, jid), 204)
        self.n.wait_line(jid, "stopped while sending", timeout=5)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertEqual(job(self.n.d, jid)["status"], "Stopped")

    def test_max_response_bytes(self):
        HTTP.on("/b/big", [(500, {}, b"E" * 100)])
        _, line = self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTP.url("/b/big")},
            "abnormal response code: 500")
        self.assertIn("body: " + "E" * 16 + "... (truncated)", line[0])
        self.assertNotIn("E" * 17, line[0])

    def test_no_proxy_is_honoured(self):
        host = "direct" + TEST_DOMAIN
        self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTP.url("/b/np", host=host)},
            "error to send request: POST http://%s:%d: " % (host, HTTP.port))
        self.assertEqual(PROXY.seen(lambda m, t, h: host in t), [])
        self.assertEqual(HTTP.count("/b/np"), 0)


# --- block_private_addresses on C ----------------------------------------

class PrivateAddressTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.n = node("c")

    def test_zero_max_retry_means_four_attempts(self):
        # quirk Q20: JOBSERVICE_WEBHOOK_JOB_MAX_RETRY=0 -> library default
        limits = plugin_limits(self.n.d)
        self.assertEqual(limits["WEBHOOK"][0], 4)
        self.assertEqual(limits["SLACK"][0], 4)

    def test_loopback_literal_refused(self):
        self.n.run_error("WEBHOOK", {
            "payload": "x", "address": HTTP.url("/c/ssrf")},
            "refusing to connect to 127.0.0.1: it is a loopback address "
            "(block_private_addresses is on)")
        self.assertEqual(HTTP.count("/c/ssrf"), 0)

    def test_resolved_name_refused(self):
        _, line = self.n.run_error("SLACK", {
            "payload": "{}", "address": HTTP.url("/c/ssrf-name",
                                                 host="localhost")},
            "refusing to connect to ")
        self.assertRegex(line[0], r"refusing to connect to (127\.0\.0\.1|::1)"
                                  r": it is a loopback address")
        self.assertEqual(HTTP.count("/c/ssrf-name"), 0)

    def test_spellings_through_the_proxy_refused(self):
        # loopback literals and "localhost" are never proxied (Go's rule);
        # these spellings are, and the proxy would resolve them to its
        # own loopback: they are refused before anything reaches it
        cases = [("localhost.", "localhost."),
                 ("LOCALHOST.", "localhost."),
                 ("api.localhost", "api.localhost"),
                 ("127.0.0.1.", "127.0.0.1"),
                 ("[fd00::1]", "fd00::1"),
                 ("100.64.0.1", "100.64.0.1"),
                 ("169.254.169.254", "169.254.169.254")]
        for i, (host, shown) in enumerate(cases):
            path = "/c/spelling-%d" % i
            url = "http://%s:%d%s" % (host, HTTP.port, path)
            self.n.run_error("WEBHOOK", {"payload": "x", "address": url},
                             "refusing to connect to %s: it is a " % shown)
            self.assertEqual(HTTP.count(path), 0)
        self.assertEqual(PROXY.seen(lambda m, t, h: "/c/spelling-" in t),
                         [])

    def test_numeric_ipv4_spellings_refused(self):
        # libcurl reads them as 127.0.0.1: direct, checked at connect()
        for i, host in enumerate(["2130706433", "0177.0.0.1", "127.1",
                                  "0x7f.0.0.1", "[::ffff:127.0.0.1]"]):
            path = "/c/numeric-%d" % i
            url = "http://%s:%d%s" % (host, HTTP.port, path)
            self.n.run_error("WEBHOOK", {"payload": "x", "address": url},
                             "refusing to connect to 127.0.0.1: it is a "
                             "loopback address")
            self.assertEqual(HTTP.count(path), 0)

    def test_name_only_the_proxy_resolves_passes(self):
        # the documented residual risk: a name that does not resolve here
        # is the proxy's to resolve (here: to 127.0.0.1)
        HTTP.on("/c/proxied")
        host = "proxied" + TEST_DOMAIN
        self.n.run_ok("WEBHOOK", {"payload": "p", "address": HTTP.url(
            "/c/proxied", host=host)})
        self.assertEqual(HTTP.count("/c/proxied"), 1)
        self.assertNotEqual(PROXY.seen(lambda m, t, h: host in t), [])


if __name__ == "__main__":
    unittest.main()
