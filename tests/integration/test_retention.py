"""RETENTION (plugins/retention) over a real berthd (isolation: process)
and a real docker-registry with htpasswd auth (registry_fixture.py):
images built here with chosen `created` times and pushed with skopeo in
another order, the policy applied, and the registry inspected afterwards
(tags, manifests by digest, the storage's revisions), the check-in read
from the job's status hook as Harbor core gets it.

One registry and one daemon for the module; every test has its own
repository."""
import json
import os
import unittest

import registry_fixture as rf
from harness import (Cluster, job_log_lines, plugin_limits, submit,
                     submit_ok, wait_for, wait_job_line, wait_status)
from receivers import Receiver
from registry_fixture import (Registry, list_tags, manifest_digest, pull,
                              push_image)

C = D = REG = HOOK = None


def entry(reg):
    s = {"registry_url": reg.url, "registry_username": reg.username,
         "registry_password": reg.password, "registry_storage": reg.root}
    return ("  - name: RETENTION\n    file: retention.so\n"
            "    isolation: process\n    settings:\n" +
            "".join("      %s: %s\n" % (k, json.dumps(v))
                    for k, v in s.items()))


def setUpModule():
    global C, D, HOOK

    def entries(t):
        global REG
        REG = Registry(t, auth="htpasswd")
        return entry(REG)
    C = Cluster(entries)
    try:
        HOOK = Receiver().start()
        HOOK.on("/hook")
        D = C.start()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    if HOOK:
        HOOK.stop()
    if REG:
        REG.close()
    if C:
        C.close()


def sel(decoration, pattern, untagged=None):
    s = {"kind": "doublestar", "decoration": decoration, "pattern": pattern}
    if untagged is not None:
        s["extras"] = json.dumps({"untagged": untagged})
    return s


def rule(template, param=None, selectors=(), disabled=False, rid=1):
    return {"id": rid, "priority": 0, "disabled": disabled,
            "action": "retain", "template": template,
            "params": {template: param} if param is not None else {},
            "tag_selectors": list(selectors),
            "scope_selectors": {"repository": [{
                "kind": "doublestar", "decoration": "repoMatches",
                "pattern": "**"}]}}


def params(repo, rules, dry_run=False):
    ns, name = repo.split("/", 1)
    return {"repository": json.dumps({"namespace": ns, "name": name,
                                      "kind": "image"}),
            "liteMeta": json.dumps({"algorithm": "or", "rules": rules}),
            "dryRun": dry_run}


def day(n):
    return "2024-01-%02dT10:00:00Z" % n


def checkins(jid):
    docs = [json.loads(r.body) for r in HOOK.requests("/hook")]
    return [json.loads(d["check_in"]) for d in docs
            if d.get("job_id") == jid and d.get("check_in")]


def run(p, status="Success"):
    jid = submit_ok(D, "RETENTION", p, hook=HOOK.url("/hook"))
    wait_status(D, jid, status, timeout=40)
    ci = wait_for(lambda: checkins(jid), what="check-in of " + jid)[-1]
    return jid, ci


def revisions(repo):
    base = os.path.join(REG.root, "docker", "registry", "v2", "repositories",
                        repo, "_manifests", "revisions", "sha256")
    return {"sha256:" + h for h in os.listdir(base)
            if os.path.exists(os.path.join(base, h, "link"))}


class RetentionTest(unittest.TestCase):
    def setUp(self):
        self.lay = os.path.join(C.path, "layouts", self.id().split(".")[-1])

    def push(self, repo, tag, created, **kw):
        kw.setdefault("layers", (1500,))
        return push_image(REG, repo, tag, self.lay, created=created, **kw)

    def five(self, repo):
        """v1..v5 created on days 1..5, pushed in another order."""
        imgs = {}
        for n in (3, 5, 1, 4, 2):
            imgs["v%d" % n] = self.push(repo, "v%d" % n, day(n))
        return imgs

    def test_keep_latest_two_of_five(self):
        imgs = self.five("lib/five")
        jid, ci = run(params("lib/five", [
            rule("latestPushedK", 2, [sel("matches", "**")])]))
        self.assertEqual(list_tags(REG, "lib/five"), ["v4", "v5"])
        for t in ("v1", "v2", "v3"):
            self.assertIsNone(manifest_digest(REG, "lib/five",
                                              imgs[t].digest))
        self.assertEqual(revisions("lib/five"),
                         {imgs["v4"].digest, imgs["v5"].digest})
        self.assertEqual((ci["total"], ci["retained"], ci["dry_run"]),
                         (5, 2, False))
        got = sorted((d["target"]["tags"], d["target"]["digest"],
                      d["target"]["pushed_time_second"], d["error"])
                     for d in ci["deleted"])
        want = sorted((["v%d" % n], imgs["v%d" % n].digest,
                       1704103200 + (n - 1) * 86400, None)
                      for n in (1, 2, 3))
        self.assertEqual(got, want)
        t = ci["deleted"][0]["target"]
        self.assertEqual((t["namespace"], t["repository"], t["kind"]),
                         ("lib", "five", "image"))
        # the table: one row per candidate
        rows = [l for l in job_log_lines(D, jid) if "| sha256:" in l]
        self.assertEqual(len(rows), 5)
        self.assertEqual(sum("| RETAIN" in l for l in rows), 2)
        self.assertTrue(pull(REG, "lib/five", "v5",
                             os.path.join(self.lay, "pulled")))

    def test_dry_run_changes_nothing(self):
        imgs = self.five("lib/dry")
        before = revisions("lib/dry")
        _, ci = run(params("lib/dry", [
            rule("latestPushedK", 2, [sel("matches", "**")])],
            dry_run=True))
        self.assertEqual(list_tags(REG, "lib/dry"),
                         ["v1", "v2", "v3", "v4", "v5"])
        self.assertEqual(revisions("lib/dry"), before)
        self.assertEqual((ci["total"], ci["retained"], ci["dry_run"]),
                         (5, 2, True))
        self.assertEqual(sorted(d["target"]["digest"]
                                for d in ci["deleted"]),
                         sorted(imgs[t].digest for t in ("v1", "v2", "v3")))

    def test_patterns(self):
        repo = "lib/pat"
        imgs = {
            "release-1.0": self.push(repo, "release-1.0", day(1)),
            "release-1.1": self.push(repo, "release-1.1", day(2)),
            "dev-a": self.push(repo, "dev-a", day(20)),
            "dev-b": self.push(repo, "dev-b", day(21)),
            "stable-old": self.push(repo, "stable-old", day(3)),
            "stable": self.push(repo, "stable", "2099-01-01T00:00:00Z"),
            "keep-me": self.push(repo, "keep-me", day(4)),
        }
        # a second tag on release-1.1: one candidate with two tags
        rf.push(imgs["release-1.1"], REG, repo, "latest")
        _, ci = run(params(repo, [
            rule("latestPushedK", 1, [sel("matches", "release-*")], rid=1),
            rule("nDaysSinceLastPush", 7, [sel("matches", "stable*")],
                 rid=2),
            rule("always", None, [sel("excludes",
                                      "{release-*,dev-*,stable*,latest}")],
                 rid=3),
            rule("always", None, [sel("matches", "**")], disabled=True,
                 rid=4)]))
        self.assertEqual(list_tags(REG, repo),
                         ["keep-me", "latest", "release-1.1", "stable"])
        self.assertEqual((ci["total"], ci["retained"]), (7, 3))
        self.assertEqual(sorted(t for d in ci["deleted"]
                                for t in d["target"]["tags"]),
                         ["dev-a", "dev-b", "release-1.0", "stable-old"])

    def test_untagged_and_index_children(self):
        repo = "lib/untag"
        old = self.push(repo, "a", day(1))
        new = self.push(repo, "a", day(2))      # old is now untagged
        other = self.push(repo, "b", day(3))
        multi = self.push(repo, "m", day(4), layers=(1000, 1200),
                          platforms=[("linux", "amd64"),
                                     ("linux", "arm64")])
        children = {m["digest"] for m in multi.manifests}
        self.assertTrue(children <= revisions(repo))
        # untagged not selected: the untagged image goes, the index
        # children (untagged too) are not candidates at all
        _, ci = run(params(repo, [rule(
            "latestPushedK", 10, [sel("matches", "**", untagged=False)])]))
        self.assertEqual((ci["total"], ci["retained"]), (4, 3))
        self.assertEqual([(d["target"]["digest"], d["target"]["tags"])
                          for d in ci["deleted"]], [(old.digest, [])])
        self.assertEqual(revisions(repo),
                         {new.digest, other.digest, multi.digest} | children)
        self.assertTrue(pull(REG, repo, "m", os.path.join(self.lay, "pm")))

    def test_index_deleted_with_its_children(self):
        repo = "lib/ix"
        multi = self.push(repo, "old", day(1), layers=(1000,),
                          platforms=[("linux", "amd64"),
                                     ("linux", "arm64")])
        newer = self.push(repo, "new", day(9))
        _, ci = run(params(repo, [
            rule("latestPushedK", 1, [sel("matches", "**")])]))
        self.assertEqual([d["target"]["digest"] for d in ci["deleted"]],
                         [multi.digest])
        # the index's push time is its newest child's created
        self.assertEqual(ci["deleted"][0]["target"]["pushed_time_second"],
                         1704103200)
        self.assertEqual(revisions(repo), {newer.digest})
        self.assertEqual(list_tags(REG, repo), ["new"])

    def test_validation_and_limits(self):
        self.assertEqual(plugin_limits(D)["RETENTION"], (3, 0, 1000))
        ok = params("lib/x", [rule("always", None, [sel("matches", "**")])])
        cases = [
            ({k: v for k, v in ok.items() if k != "dryRun"},
             "missing parameter: dryRun"),
            (dict(ok, dryRun="false"), "invalid parameter: dryRun"),
            (dict(ok, repository="lib/x"),
             "invalid parameter: repository: not valid JSON"),
            (params("lib/x", [rule("latestPulledN", 3,
                                   [sel("matches", "**")])]),
             "template \\\"latestPulledN\\\" is not supported"),
            (params("lib/x", [rule("always", None, [{
                "kind": "label", "decoration": "withLabels",
                "pattern": "a"}])]),
             "kind \\\"label\\\" is not supported"),
            (params("lib/x", [rule("always", None,
                                   [sel("matches", "v[")])]),
             "malformed pattern"),
            (dict(ok, liteMeta=json.dumps({"algorithm": "and",
                                           "rules": []})),
             "algorithm \\\"and\\\" is not supported"),
            # validate() runs on a REST API thread with a small stack:
            # deep nesting inside a JSON-string parameter is refused
            # before cJSON recurses (berthd stays up, checked below)
            (dict(ok, liteMeta="[" * 700 + "]" * 700),
             "liteMeta: nests arrays or objects deeper than 64 levels"),
            (dict(ok, repository='{"a":' * 1200 + "1" + "}" * 1200),
             "repository: nests arrays or objects deeper than 64 levels"),
        ]
        for p, text in cases:
            st, _, doc = submit(D, "RETENTION", p)
            self.assertEqual(st, 400, (p, doc))
            self.assertIn(text, json.dumps(doc))
        self.assertIsNone(D.proc.poll())


if __name__ == "__main__":
    unittest.main()
