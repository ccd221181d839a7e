"""Prometheus endpoint (spec 14.1) over real HTTP: a berthd with
`metric: {enabled: true, path: /metrics, port: 8080}` and BERTH_METRICS_PORT=0
(metric.port must be 1..65535 in the file; the variable lets tests bind a
free port, written to BERTH_METRICS_PORT_FILE). Jobs of the engine test
plugin succeed, fail, are stopped and retried; the scrape must count them,
show queue lengths and latencies read from Redis, and be a valid exposition
for a strict validator below and for `promtool check metrics` (Debian
package prometheus; that part is skipped when promtool is missing)."""
import http.client
import math
import os
import re
import shutil
import subprocess
import time
import unittest

from harness import (NS, SOURCE, Cluster, make_retries_due, stop_job,
                     submit_ok, wait_for, wait_status)

PLUGINS = """  - name: NOOP
    file: engine.so
  - name: NORETRY
    file: engine.so
  - name: SLEEPER
    file: engine.so
  - name: FLAKY
    file: engine.so
    max_fails: 3
"""

METRIC_CONFIG = """metric:
  enabled: true
  path: /metrics
  port: 8080
"""


def daemon_wires_metrics():
    try:
        with open(os.path.join(SOURCE, "host", "daemon.c")) as f:
            return "metrics_server_start" in f.read()
    except OSError:
        return False


# --- a strict validator of the text format 0.0.4 ---------------------------

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "summary", "histogram", "untyped"}


def parse_value(s):
    if s in ("NaN", "+Inf", "-Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise ValueError("bad value %r" % s)
    return float(s)


def parse_sample(line):
    """(name, {label: value}, value) of one sample line, strictly."""
    m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line)
    if not m:
        raise ValueError("bad metric name: %r" % line)
    name, i = m.group(1), m.end()
    labels = {}
    if i < len(line) and line[i] == "{":
        i += 1
        while line[i] != "}":
            m = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"").match(line, i)
            if not m:
                raise ValueError("bad label at %d: %r" % (i, line))
            lname = m.group(1)
            if lname.startswith("__"):
                raise ValueError("reserved label name: %r" % line)
            if lname in labels:
                raise ValueError("duplicate label %s: %r" % (lname, line))
            i = m.end()
            val = []
            while True:
                c = line[i]
                if c == "\\":
                    e = line[i + 1]
                    if e not in ('\\', '"', 'n'):
                        raise ValueError("bad escape: %r" % line)
                    val.append("\n" if e == "n" else e)
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    val.append(c)
                    i += 1
            labels[lname] = "".join(val)
            if line[i] == ",":
                i += 1
            elif line[i] != "}":
                raise ValueError("bad separator: %r" % line)
        i += 1
    if line[i:i + 1] != " ":
        raise ValueError("no space before the value: %r" % line)
    parts = line[i + 1:].split(" ")
    if len(parts) not in (1, 2):
        raise ValueError("trailing text: %r" % line)
    value = parse_value(parts[0])
    if len(parts) == 2 and not re.fullmatch(r"-?\d+", parts[1]):
        raise ValueError("bad timestamp: %r" % line)
    return name, labels, value


def validate(text):
    """Checks the whole exposition; returns {(name, frozenset(labels)):
    value}. Raises ValueError on anything a strict parser refuses."""
    if not text.endswith("\n"):
        raise ValueError("no final newline")
    types, helps, closed = {}, set(), set()
    current = None
    series = {}
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (\S+) (.*)", line)
            if not m:
                raise ValueError("stray comment: %r" % line)
            kind, name, rest = m.groups()
            if not NAME.match(name):
                raise ValueError("bad name: %r" % line)
            if name in closed or name == current:
                raise ValueError("%s after samples: %r" % (kind, line))
            if kind == "HELP":
                if name in helps:
                    raise ValueError("second HELP: %r" % line)
                if re.search(r"\\[^\\n]", rest):
                    raise ValueError("bad HELP escape: %r" % line)
                helps.add(name)
            else:
                if name in types:
                    raise ValueError("second TYPE: %r" % line)
                if rest not in TYPES:
                    raise ValueError("bad TYPE: %r" % line)
                types[name] = rest
            continue
        if not line:
            raise ValueError("empty line")
        name, labels, value = parse_sample(line)
        family = name
        if family not in types:
            for suffix in ("_sum", "_count"):
                if name.endswith(suffix) and \
                        types.get(name[:-len(suffix)]) in ("summary",
                                                           "histogram"):
                    family = name[:-len(suffix)]
        if family not in types:
            raise ValueError("sample without a TYPE: %r" % line)
        t = types[family]
        if t == "summary" and family == name and "quantile" not in labels:
            raise ValueError("summary sample without quantile: %r" % line)
        if "quantile" in labels and (t != "summary" or family != name):
            raise ValueError("unexpected quantile: %r" % line)
        if t == "counter" and (math.isnan(value) or value < 0):
            raise ValueError("bad counter value: %r" % line)
        if family in closed:
            raise ValueError("family %s continued: %r" % (family, line))
        if current is not None and current != family:
            closed.add(current)
        current = family
        key = (name, frozenset(labels.items()))
        if key in series:
            raise ValueError("duplicate series: %r" % line)
        series[key] = value
    return series


def sample(series, name, **labels):
    return series.get((name, frozenset(labels.items())))


class ValidatorSelfTest(unittest.TestCase):
    """The validator must refuse what a strict parser refuses."""

    def test_refuses_bad_input(self):
        validate('# HELP a_total x\n# TYPE a_total counter\n'
                 'a_total{k="v\\"\\\\\\n"} 1\n# TYPE s summary\n'
                 's{quantile="0.5"} NaN\ns_sum 0\ns_count 0\n')
        for bad in ['a 1\n', '# TYPE a gauge\na 1\na 2\n',
                    '# TYPE a gauge\na{b="1",b="2"} 1\n',
                    '# TYPE a gauge\na{b="\\x"} 1\n',
                    '# TYPE a gauge\na 1', '# TYPE a gauge\na x\n',
                    '# TYPE a gauge\n# TYPE a gauge\na 1\n',
                    '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 1\n',
                    '# TYPE a counter\na -1\n', '# TYPE a summary\na 1\n',
                    '# TYPE a gauge\na_sum 1\n', '# whatever\n',
                    '# TYPE a gauge\na{b="x"}1\n']:
            with self.assertRaises(ValueError, msg=bad):
                validate(bad)


@unittest.skipUnless(daemon_wires_metrics(),
                     "host/daemon.c does not start the metrics server yet")
class MetricsTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS, config_extra=METRIC_CONFIG)
        cls.r = cls.c.client()
        cls.port_file = os.path.join(cls.c.path, "metrics_port")
        cls.d = cls.c.start(env={
            "BERTH_METRICS_PORT": "0",
            "BERTH_METRICS_PORT_FILE": cls.port_file,
            "METRIC_NAMESPACE": None, "METRIC_SUBSYSTEM": None,
        })
        wait_for(lambda: os.path.exists(cls.port_file), timeout=15,
                 what="metrics port file")
        with open(cls.port_file) as f:
            cls.mport = int(f.read().strip())

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        # a clean shutdown with the listener up (sanitizer builds report
        # through the exit status)
        cls.c.close()

    def get(self, path="/metrics", method="GET"):
        c = http.client.HTTPConnection("127.0.0.1", self.mport, timeout=10)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            c.close()

    def scrape(self):
        st, h, body = self.get()
        self.assertEqual(st, 200, body)
        return body, validate(body)

    def wait_sample(self, name, value, timeout=15, **labels):
        def ok():
            _, s = self.scrape()
            return sample(s, name, **labels) == value
        try:
            wait_for(ok, timeout=timeout, what="%s%s == %s" %
                     (name, labels, value))
        except AssertionError:
            body, s = self.scrape()
            self.fail("%s%s is %s, want %s\n%s" % (
                name, labels, sample(s, name, **labels), value, body))

    def test_1_listener(self):
        self.assertIn("metrics listening on 127.0.0.1:%d" % self.mport,
                      self.d.log())
        st, h, body = self.get()
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"],
                         "text/plain; version=0.0.4; charset=utf-8")
        s = validate(body)
        # info: node, pool (this daemon's pool id), workers
        st, _, stats = self.d.json("GET", "/api/v1/stats", auth=False)
        self.assertEqual(st, 200)
        pools = [p["worker_pool_id"] for p in stats["worker_pools"]]
        infos = [(k, v) for k, v in s.items()
                 if k[0] == "harbor_jobservice_info"]
        self.assertEqual(len(infos), 1, body)
        labels = dict(infos[0][0][1])
        self.assertEqual(infos[0][1], 1)
        self.assertEqual(labels["workers"], "4")
        self.assertRegex(labels["node"], r"^(.+:\d+\.\d+\.\d+\.\d+|"
                                         r"[0-9a-f]{24})$")
        self.assertIn(labels["pool"], pools)
        self.assertEqual(sample(s, "berth_redis_up"), 1)
        for name in ("berth_hooks_delivered_total", "berth_hooks_failed_total",
                     "berth_hooks_pending", "berth_redis_errors_total"):
            self.assertIsNotNone(sample(s, name), name)
        for reason in ("retry_bound", "backlog", "expired"):
            self.assertIsNotNone(sample(s, "berth_hooks_dropped_total",
                                        reason=reason), reason)
        for a in ("hdel", "error", "refire", "apply_ack", "retry_status"):
            self.assertIsNotNone(
                sample(s, "berth_reaper_actions_total", action=a), a)
        # every registered type has a queue
        for t in ("NOOP", "NORETRY", "SLEEPER", "FLAKY"):
            self.assertEqual(sample(s, "berth_queue_length", type=t), 0,
                             body)
        # other paths 404, other methods 405, HEAD works; no auth
        self.assertEqual(self.get("/metricsx")[0], 404)
        self.assertEqual(self.get("/api/v1/stats")[0], 404)
        self.assertEqual(self.get("/")[0], 404)
        st, h, _ = self.get(method="POST")
        self.assertEqual(st, 405)
        self.assertEqual(h["Allow"], "GET, HEAD")
        st, _, body = self.get(method="HEAD")
        self.assertEqual((st, body), (200, ""))

    def test_2_jobs_are_counted(self):
        ids = [submit_ok(self.d, "NOOP", {"i": i}) for i in range(3)]
        for jid in ids:
            wait_status(self.d, jid, "Success")
        self.wait_sample("harbor_jobservice_task_total", 3,
                         status="success", type="NOOP")
        # a failure that is never retried
        jid = submit_ok(self.d, "NORETRY", {})
        wait_status(self.d, jid, "Error")
        self.wait_sample("harbor_jobservice_task_total", 1,
                         status="fail", type="NORETRY")
        # a stopped run
        jid = submit_ok(self.d, "SLEEPER", {"ms": 60000})
        wait_status(self.d, jid, "Running")
        self.wait_sample("berth_jobs_running", 1, type="SLEEPER")
        self.assertEqual(stop_job(self.d, jid), 204)
        self.wait_sample("harbor_jobservice_task_total", 1,
                         status="stop", type="SLEEPER")
        self.wait_sample("berth_jobs_running", 0, type="SLEEPER")
        # a failure with a retry, then its success
        counter = os.path.join(self.c.path, "flaky-counter")
        jid = submit_ok(self.d, "FLAKY", {"fail_times": 1,
                                    "counter_file": counter})
        wait_status(self.d, jid, "Error")
        self.wait_sample("harbor_jobservice_task_total", 1,
                         status="fail", type="FLAKY")
        self.wait_sample("berth_job_retries_total", 1, type="FLAKY")
        # skip the back-off
        wait_for(lambda: make_retries_due(self.r, jid), what="retry entry")
        wait_status(self.d, jid, "Success")
        self.wait_sample("harbor_jobservice_task_total", 1,
                         status="success", type="FLAKY")

        body, s = self.scrape()
        name = "harbor_jobservice_task_process_time_seconds"
        self.assertIn("# TYPE %s summary\n" % name, body)
        self.assertEqual(sample(s, name + "_count", status="success",
                                type="NOOP"), 3)
        self.assertEqual(sample(s, name + "_count", status="stop",
                                type="SLEEPER"), 1)
        for q in ("0.5", "0.9", "0.99"):
            v = sample(s, name, status="success", type="NOOP", quantile=q)
            self.assertIsNotNone(v, q)
            self.assertTrue(0 <= v < 10, v)
        # the stopped sleeper ran for a while: its time says so
        self.assertGreater(sample(s, name + "_sum", status="stop",
                                  type="SLEEPER"), 0.05)
        self.assertEqual(sample(s, "berth_jobs_running", type="NOOP"), 0)
        # no other statuses than Harbor's three
        for (n, labels), _ in s.items():
            if n == "harbor_jobservice_task_total":
                self.assertIn(dict(labels)["status"],
                              ("success", "fail", "stop"))

    def test_3_queue_length_and_latency(self):
        self.r("SET", NS + ":jobs:NOOP:paused", "1")
        try:
            a = submit_ok(self.d, "NOOP", {"q": 1})
            submit_ok(self.d, "NOOP", {"q": 2})
            self.wait_sample("berth_queue_length", 2, type="NOOP")
            # the oldest message ages past a second: nothing to wait for
            time.sleep(1.2)
            _, s = self.scrape()
            lat = sample(s, "berth_queue_latency_seconds", type="NOOP")
            self.assertGreaterEqual(lat, 1.0)
            self.assertLess(lat, 60)
            self.assertEqual(sample(s, "berth_queue_latency_seconds",
                                    type="NORETRY"), 0)
        finally:
            self.r("DEL", NS + ":jobs:NOOP:paused")
        wait_status(self.d, a, "Success")
        self.wait_sample("berth_queue_length", 0, type="NOOP")
        self.wait_sample("berth_queue_latency_seconds", 0, type="NOOP")

    def test_4_promtool(self):
        body, _ = self.scrape()
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed (Debian: prometheus)")
        p = subprocess.run([promtool, "check", "metrics"], input=body,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0,
                         "promtool:\n%s%s\n%s" % (p.stdout, p.stderr, body))


if __name__ == "__main__":
    unittest.main()
