"""Shared part of the cost checks of tests/perf/: the workload (the two
berthds, a fixed worker count, busy workers, one keep-alive submitter),
thresholds.json, the comparison of measured figures with their thresholds,
and the --measure output (a "<section>" block to paste into
thresholds.json).

thresholds.json holds one object per check ("redis_cost", "instructions").
In each, every numeric key is a figure's name and its threshold: the
check fails when the figure is above it. A threshold of null means the
figure is reported and not checked. "note" says what was measured, when and
on which code; --measure prints it, --update writes it.
"""
import datetime
import http.client
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

THRESHOLDS = os.path.join(HERE, "thresholds.json")
MARGIN = 1.20   # a threshold is this much above the achieved figure
SKIP = 77       # exit status ctest reads as "skipped" (SKIP_RETURN_CODE)
TYPE = "NOOP"   # succeeds at once (tests/plugins/engine)
# the API daemon's manifest (the Cluster's): NOOP, and SLEEPER to keep its
# workers busy; the drain daemon loads NOOP alone (start_drainer), since
# every loaded type adds to the cost of a fetch
ENTRIES = ("  - name: NOOP\n    file: engine.so\n"
           "  - name: SLEEPER\n    file: engine.so\n")


def config(workers, manifest=None):
    """berth.yml of the harness with `workers` workers, INFO logging (the
    harness's DEBUG would make the job log lines the cost) and, when
    given, another manifest than the Cluster's."""
    def make(sock, data, cluster_manifest):
        text = harness.harbor_config(sock, data,
                                     manifest or cluster_manifest,
                                     harness.FAST_GRACE)
        text = text.replace("workers: 4", "workers: %d" % workers)
        return text.replace('level: "DEBUG"', 'level: "INFO"')
    return make


def start_api(c, workers):
    """The daemon that takes the submits: NOOP and SLEEPER."""
    c.config = config(workers)
    return c.start("api")


def start_drainer(c, workers):
    """The daemon that drains: NOOP alone, same plugin directory."""
    manifest = os.path.join(c.path, "drain-plugins.yml")
    harness.write(manifest, 'plugin_dir: "%s"\nplugins:\n'
                  '  - name: NOOP\n    file: engine.so\n' % c.plugin_dir)
    c.config = config(workers, manifest)
    return c.start("drain")


def stop_daemon(d):
    """SIGTERM; the daemon must exit 0 (it takes its pool out of
    NS:worker_pools on the way)."""
    rc = d.stop()
    if rc != 0:
        raise AssertionError("berthd exited %s:\n%s" % (rc, d.log()[-4000:]))


def wait_pool(r):
    """Waits until a worker pool has registered, then 1.5 s: the first
    recovery pass runs 1 s after the start."""
    harness.wait_for(lambda: r("SCARD", harness.NS + ":worker_pools"),
                     timeout=60, what="a registered worker pool")
    time.sleep(1.5)


def pause_key():
    return harness.NS + ":jobs:%s:paused" % TYPE


class Submitter:
    """POST /api/v1/jobs of NOOP jobs on one keep-alive connection, one
    request in flight."""

    def __init__(self, d):
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port,
                                               timeout=120)

    def post(self, i):
        body = json.dumps({"job": {"name": TYPE, "parameters": {"i": i},
                                   "metadata": {"kind": "Generic"}}})
        self.conn.request("POST", "/api/v1/jobs", body=body, headers={
            "Authorization": "Harbor-Secret " + harness.SECRET,
            "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 202:
            raise AssertionError("submit: %s %s" % (resp.status, data[:300]))
        return json.loads(data)["job"]["id"]

    def close(self):
        self.conn.close()


def occupy_workers(d, r, workers):
    """Gives every worker a SLEEPER job (which runs until stopped) and
    waits until all run; returns their ids.

    Why: a submit pushes a wake-up; an idle worker takes it, fetches (the
    type is paused: nothing), then fetches again after 10 and 100 ms
    unless another wake-up came first. How many of those empty fetches a
    submit causes depends on the timing of the submits, so a submit phase
    with idle workers varies with the machine's load (+12 % with three busy
    loops on 2 cores, 10 workers). Busy workers do not fetch: the submit
    phase then counts the API's own work only. A running SLEEPER checks
    for a stop every 10 ms and reads its status at most every 100 ms: a
    steady rate, measured before the submits ("busy") and subtracted."""
    ids = [harness.submit_ok(d, "SLEEPER", {"ms": 3600 * 1000})
           for _ in range(workers)]
    for jid in ids:
        harness.wait_status(d, jid, "Running", timeout=60)
    return ids


def release_workers(d, r, ids):
    """Stops the SLEEPER jobs and waits until the workers have let go of
    them and taken the wake-ups the submits left (not counted)."""
    for jid in ids:
        harness.stop_job(d, jid)
    for jid in ids:
        harness.wait_status(d, jid, "Stopped", timeout=60)
    lock = harness.NS + ":jobs:SLEEPER:lock"
    harness.wait_for(lambda: int(r("GET", lock) or 0) == 0, timeout=60,
                     what="the SLEEPER runs to end")
    settle_wakeups(r)


def settle_wakeups(r):
    """Waits (at most 10 s) until idle workers have taken every wake-up
    (NS:berth:wakeup, Berth's own key; if it goes away this waits for
    nothing), then 0.1 s for the last woken worker's fetch."""
    end = time.monotonic() + 10
    while r("LLEN", harness.NS + ":berth:wakeup") and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(0.1)


def wait_all_success(r, ids, timeout):
    """Polls each job's status in turn (HGET), so the polling costs about
    one command per job plus one per 20 ms; Error or Stopped fails at
    once. Then waits until NS:jobs:NOOP:lock (jobs running) is 0 and 0.2 s
    more: a worker writes Success before it finishes the claim and removes
    its observation, and those commands belong to the drain."""
    deadline = time.monotonic() + timeout
    left = list(ids)
    while left:
        st = r("HGET", harness.NS + ":job_stats:" + left[-1], "status")
        if st == "Success":
            left.pop()
            continue
        if st in ("Error", "Stopped"):
            raise AssertionError("job %s ended %s" % (left[-1], st))
        if time.monotonic() > deadline:
            raise AssertionError("%d jobs not Success after %ss" %
                                 (len(left), timeout))
        time.sleep(0.02)
    lock = harness.NS + ":jobs:%s:lock" % TYPE
    while int(r("GET", lock) or 0) > 0:
        if time.monotonic() > deadline:
            raise AssertionError("%s still %s" % (lock, r("GET", lock)))
        time.sleep(0.02)
    time.sleep(0.2)


def load(section):
    with open(THRESHOLDS) as f:
        return json.load(f).get(section, {})


def suggest(value, digits=3):
    """value * MARGIN rounded up to `digits` significant digits."""
    v = value * MARGIN
    if v <= 0:
        return 0
    scale = 10 ** (math.floor(math.log10(v)) - digits + 1)
    out = math.ceil(v / scale) * scale
    return int(out) if scale >= 1 else round(out, 10)


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.2f" % v if abs(v) < 1000 else "{:,.0f}".format(v)
    return "{:,}".format(v)


def update(section, block):
    """Replaces the section of thresholds.json with block."""
    with open(THRESHOLDS) as f:
        doc = json.load(f)
    doc[section] = block
    with open(THRESHOLDS + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(THRESHOLDS + ".tmp", THRESHOLDS)


def add_arguments(ap):
    ap.add_argument("--measure", action="store_true",
                    help="print figures and suggested thresholds; never fail")
    ap.add_argument("--update", action="store_true",
                    help="as --measure, and write the suggested thresholds "
                    "into tests/perf/thresholds.json")


def check(section, figures, measure, note, extra=None, write=False):
    """Prints figures against their thresholds; returns the exit status.

    figures  [(name, value, checked)]: checked False for a figure that is
             reported but never gets a threshold
    measure  True: print the suggested block and never fail
    write    True: also write the suggested block into thresholds.json
    note     what was measured (goes into the suggested block's "note")
    extra    other keys of the suggested block (not figures)
    """
    limits = load(section)
    failed = []
    print("\n%-36s %14s %14s  %s" % ("figure", "measured", "threshold",
                                     "result"))
    for name, value, checked in figures:
        limit = limits.get(name) if checked else None
        if limit is None:
            verdict = "not checked" if checked else "reported"
        elif value > limit:
            verdict = "ABOVE THRESHOLD"
            failed.append(name)
        else:
            verdict = ("ok (%.0f%% of it)" % (100.0 * value / limit)
                       if limit else "ok")
            if value * MARGIN < 0.9 * limit:
                verdict += ", improved: lower it with --update"
        print("%-36s %14s %14s  %s" % (name, fmt(value), fmt(limit),
                                        verdict))
    if measure:
        block = {"note": "%s; measured %s" % (
            note, datetime.date.today().isoformat())}
        block.update(extra or {})
        for name, value, checked in figures:
            if checked:
                block[name] = suggest(value)
        print("\nSuggested thresholds (measured + %d %%), to paste into "
              "tests/perf/thresholds.json:" % round((MARGIN - 1) * 100))
        print(json.dumps({section: block}, indent=2))
        if write:
            update(section, block)
            print("written to %s" % THRESHOLDS)
        return 0
    if failed:
        print("\nFAIL: %s above the threshold of tests/perf/thresholds.json"
              % ", ".join(failed))
        print("(if the increase is deliberate: re-measure with --update, "
              "which rewrites the section, and say why in the commit)")
        return 1
    print("\nall checked figures within their thresholds "
          "(tests/perf/thresholds.json)")
    return 0
