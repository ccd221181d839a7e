"""GARBAGE_COLLECTION (plugins/gc) over a real berthd (isolation: process,
as recommended) and a real docker-registry per test (registry_fixture.py):
images built here and pushed with skopeo, the sweep checked on disk (which
blob files are gone, to the byte), the check-in compared with what
happened, the remaining images pulled back with skopeo. Also: multi-arch
indexes survive delete_untagged (distribution's own --delete-untagged
would remove their children), a dry run changes no file, the read-only
window really restarts the registry read-only and back, and stop kills the
tool and still leaves the window."""
import json
import os
import shutil
import threading
import time
import types
import unittest

import registry_fixture as rf
from harness import (Cluster, TempDir, harbor_config, job_log_lines,
                     plugin_limits,
                     stop_job, submit, submit_ok, wait_for, wait_job_line,
                     wait_status)
from receivers import Receiver
from registry_fixture import (Registry, blob_path, blobs_on_disk,
                              delete_manifest, manifest_digest, pull,
                              push_image)


def gc_entry(settings):
    lines = "".join("      %s: %s\n" % (k, json.dumps(v))
                    for k, v in settings.items())
    return ("  - name: GARBAGE_COLLECTION\n    file: gc.so\n"
            "    isolation: process\n    settings:\n" + lines)


def tree(root):
    """{relative path: size} of every file under root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = os.path.getsize(p)
    return out


def shared_pair(tmp):
    """An OCI layout with two images, tags "a" and "b", whose first layer
    is the same blob. Returns {name: {"manifest","config","own","shared"}}."""
    lay = os.path.join(tmp, "shared-layout")
    os.makedirs(os.path.join(lay, "blobs", "sha256"))
    with open(os.path.join(lay, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    shared = rf._layer(lay, 20000, False)
    entries, imgs = [], {}
    for name in ("a", "b"):
        own = rf._layer(lay, 30000 + len(entries) * 1000, False)
        layers = [shared, own]
        cfg = json.dumps({
            "created": "2024-01-01T00:00:00Z", "architecture": "amd64",
            "os": "linux", "config": {"Labels": {"image": name}},
            "rootfs": {"type": "layers",
                       "diff_ids": [l[2] for l in layers]}}).encode()
        cfgd = rf._put_blob(lay, cfg)
        man = json.dumps({
            "schemaVersion": 2, "mediaType": rf.OCI_MANIFEST,
            "config": {"mediaType": rf.OCI_CONFIG, "digest": cfgd,
                       "size": len(cfg)},
            "layers": [{"mediaType": rf.OCI_LAYER, "digest": l[0],
                        "size": l[1]} for l in layers]}).encode()
        mand = rf._put_blob(lay, man)
        entries.append({"mediaType": rf.OCI_MANIFEST, "digest": mand,
                        "size": len(man), "annotations": {
                            "org.opencontainers.image.ref.name": name}})
        imgs[name] = {"manifest": mand, "config": cfgd, "own": own[0],
                      "shared": shared[0],
                      "layout": types.SimpleNamespace(
                          layout=lay, tag=name, media_type=rf.OCI_MANIFEST)}
    with open(os.path.join(lay, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)
    return imgs


def push_referrer(reg, repo, subject_digest, subject_size, kind):
    """An untagged OCI artifact manifest whose subject is the given
    manifest (a signature, say); returns its digest."""
    blob = b"{}"
    d = rf.sha256(blob)
    st, h, _ = reg.request("POST", "/v2/%s/blobs/uploads/" % repo)
    assert st == 202, st
    loc = h["location"][h["location"].index("/v2/"):]
    st, _, _ = reg.request("PUT", loc + ("&" if "?" in loc else "?") +
                           "digest=" + d, body=blob,
                           headers={"Content-Type":
                                    "application/octet-stream"})
    assert st == 201, st
    empty = {"mediaType": "application/vnd.oci.empty.v1+json",
             "digest": d, "size": 2}
    man = json.dumps({
        "schemaVersion": 2, "mediaType": rf.OCI_MANIFEST,
        "artifactType": "application/vnd.example." + kind,
        "config": empty, "layers": [empty],
        "subject": {"mediaType": rf.OCI_MANIFEST, "digest": subject_digest,
                    "size": subject_size}}).encode()
    md = rf.sha256(man)
    assert rf.put_manifest(reg, repo, md, rf.OCI_MANIFEST, man) == 201
    return md


class GCTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.reg = Registry(self.tmp.path)
        self.c = None
        self.hook = Receiver().start()
        self.hook.on("/hook")
        self.work = os.path.join(self.tmp.path, "work")
        os.makedirs(self.work)

    def tearDown(self):
        try:
            if self.c:
                self.c.close()
        finally:
            self.hook.stop()
            self.reg.close()
            self.tmp.cleanup()

    def start(self, **settings):
        s = {"registry_config": self.reg.config_path,
             "registry_binary": rf.REGISTRY_BIN}
        s.update(settings)
        # a stop grace long enough for the leave command after a stop,
        # even on a loaded machine (the runner is killed past it)
        self.c = Cluster(gc_entry(s), config=lambda sock, data, man:
                         harbor_config(sock, data, man,
                                       "  stop_grace_seconds: 15\n"
                                       "  shutdown_grace_seconds: 5\n"))
        self.d = self.c.start()
        return self.d

    def run_gc(self, params=None, status="Success", timeout=40):
        jid = submit_ok(self.d, "GARBAGE_COLLECTION", params or {},
                        hook=self.hook.url("/hook"))
        j = wait_status(self.d, jid, status, timeout=timeout)
        return jid, j

    def checkins(self, jid):
        """The check-ins the status hook received for the job (what
        Harbor core stores)."""
        docs = [json.loads(r.body) for r in self.hook.requests("/hook")]
        return [json.loads(d["check_in"]) for d in docs
                if d.get("job_id") == jid and d.get("check_in")]

    def checkin_of(self, jid):
        return wait_for(lambda: self.checkins(jid),
                        what="check-in of %s" % jid)[-1]

    def sizes(self, digests):
        return sum(os.path.getsize(blob_path(self.reg, d)) for d in digests)

    def revision_link(self, repo, digest):
        return os.path.join(self.reg.root, "docker", "registry", "v2",
                            "repositories", repo, "_manifests", "revisions",
                            "sha256", digest[7:], "link")

    # --- the sweep -----------------------------------------------------------

    def test_frees_exactly_the_unreferenced_blobs(self):
        imgs = shared_pair(self.work)
        for name in ("a", "b"):
            d = rf.push(imgs[name]["layout"], self.reg, "lib/pair", name)
            self.assertEqual(d, imgs[name]["manifest"])
        a, b = imgs["a"], imgs["b"]
        self.assertEqual(delete_manifest(self.reg, "lib/pair",
                                         a["manifest"]), 202)
        gone_want = {a["manifest"], a["config"], a["own"]}
        freed_want = self.sizes(gone_want)
        before = blobs_on_disk(self.reg)
        self.assertTrue(gone_want <= before)
        self.start()
        jid, _ = self.run_gc({"delete_untagged": False, "dry_run": False,
                              "workers": 3, "time_window": 2,
                              "redis_url_reg": "redis://127.0.0.1:6379/1",
                              "delete_tag": False})
        after = blobs_on_disk(self.reg)
        self.assertEqual(before - after, gone_want)
        for d in (a["shared"], b["manifest"], b["config"], b["own"]):
            self.assertIn(d, after)
        self.assertEqual(self.checkin_of(jid), {
            "freed_space": freed_want, "purged_blobs": 3,
            "purged_manifests": 0})
        # the tool's output is in the job log, line by line
        wait_job_line(self.d, jid, "[garbage-collect] 4 blobs marked, 3 "
                      "blobs and 0 manifests eligible for deletion")
        wait_job_line(self.d, jid, "do not apply")
        # the other image is whole: skopeo checks every digest
        self.assertTrue(pull(self.reg, "lib/pair", "b",
                             os.path.join(self.work, "pulled")))
        self.assertIsNone(manifest_digest(self.reg, "lib/pair", "a"))

    def test_untagged_removed_and_multiarch_kept(self):
        lay = os.path.join(self.work, "layouts")
        multi = push_image(self.reg, "lib/multi", "v1", lay,
                           layers=(3000, 5000),
                           platforms=[("linux", "amd64"),
                                      ("linux", "arm64")])
        old = push_image(self.reg, "lib/app", "v1", lay, layers=(4000,))
        # a signature of the old image, pushed before it lost its tag
        old_sig = push_referrer(self.reg, "lib/app", old.digest,
                                old.manifests[0]["size"], "sig")
        new = push_image(self.reg, "lib/app", "v1", lay, layers=(6000,))
        new_sig = push_referrer(self.reg, "lib/app", new.digest,
                                new.manifests[0]["size"], "sig")
        self.assertTrue(os.path.exists(self.revision_link(
            "lib/app", old.digest)))
        before = blobs_on_disk(self.reg)
        # the old image and its signature go; the new one's signature,
        # untagged but referring to a tagged image, stays
        gone_want = {old.digest, old_sig} | set(old.blobs)
        freed_want = self.sizes(gone_want)
        self.start()
        jid, _ = self.run_gc()      # Harbor's defaults: delete_untagged
        after = blobs_on_disk(self.reg)
        self.assertEqual(before - after, gone_want)
        self.assertEqual(self.checkin_of(jid), {
            "freed_space": freed_want, "purged_blobs": len(gone_want),
            "purged_manifests": 2})
        self.assertFalse(os.path.exists(self.revision_link(
            "lib/app", old.digest)))
        self.assertFalse(os.path.exists(self.revision_link(
            "lib/app", old_sig)))
        self.assertTrue(os.path.exists(self.revision_link(
            "lib/app", new_sig)))
        self.assertIsNotNone(manifest_digest(self.reg, "lib/app", new_sig))
        wait_job_line(self.d, jid, "manifest eligible for deletion: "
                      "lib/app@" + old.digest)
        # the index and both children (untagged themselves) survive
        for m in multi.manifests:
            self.assertTrue(os.path.exists(self.revision_link(
                "lib/multi", m["digest"])))
        self.assertTrue(set(multi.blobs) <= after)
        self.assertTrue(pull(self.reg, "lib/multi", "v1",
                             os.path.join(self.work, "pm")))
        self.assertTrue(pull(self.reg, "lib/app", "v1",
                             os.path.join(self.work, "pa")))
        self.assertEqual(manifest_digest(self.reg, "lib/app", "v1"),
                         new.digest)

    def test_dry_run_changes_nothing(self):
        imgs = shared_pair(self.work)
        for name in ("a", "b"):
            rf.push(imgs[name]["layout"], self.reg, "lib/pair", name)
        a = imgs["a"]
        delete_manifest(self.reg, "lib/pair", a["manifest"])
        lay = os.path.join(self.work, "layouts")
        old = push_image(self.reg, "lib/app", "v1", lay, layers=(4000,))
        push_image(self.reg, "lib/app", "v1", lay, layers=(6000,))
        eligible = {a["manifest"], a["config"], a["own"]}
        snapshot = tree(self.reg.root)
        self.start()
        jid, _ = self.run_gc({"dry_run": True})
        self.assertEqual(tree(self.reg.root), snapshot)
        self.assertEqual(self.checkin_of(jid), {
            "freed_space": 0, "purged_blobs": 0, "purged_manifests": 0,
            "dry_run": True, "eligible_space": self.sizes(eligible),
            "eligible_blobs": 3, "eligible_manifests": 1})
        wait_job_line(self.d, jid, "lib/app@" + old.digest)
        wait_job_line(self.d, jid, "nothing was deleted")

    # --- the read-only window ---------------------------------------------------

    def test_readonly_window_restarts_the_registry(self):
        """The commands ask this test (through files) to restart the
        registry with storage.maintenance.readonly on, then off: a push
        during the window is refused, the sweep runs inside it."""
        w = self.work
        events = []

        def helper():
            try:
                wait_for(lambda: os.path.exists(os.path.join(w, "enter")),
                         timeout=30, what="enter request")
                self.reg.restart(readonly=True)
                st, _, _ = self.reg.request("POST",
                                            "/v2/lib/probe/blobs/uploads/")
                events.append(("upload during the window", st))
                open(os.path.join(w, "entered"), "w").close()
                wait_for(lambda: os.path.exists(os.path.join(w, "leave")),
                         timeout=30, what="leave request")
                self.reg.restart(readonly=False)
                open(os.path.join(w, "left"), "w").close()
            except Exception as e:   # seen by the assertions below
                events.append(("helper failed", repr(e)))

        def wait_file(name):
            return ("i=0; while [ ! -f %s ] && [ $i -lt 300 ]; do "
                    "sleep 0.1; i=$((i+1)); done; test -f %s"
                    % (os.path.join(w, name), os.path.join(w, name)))

        imgs = shared_pair(self.work)
        rf.push(imgs["a"]["layout"], self.reg, "lib/pair", "a")
        delete_manifest(self.reg, "lib/pair", imgs["a"]["manifest"])
        t = threading.Thread(target=helper, daemon=True)
        t.start()
        self.start(readonly_enter_command="touch %s && %s && echo "
                   "read-only now" % (os.path.join(w, "enter"),
                                      wait_file("entered")),
                   readonly_leave_command="touch %s && %s && echo "
                   "writable again" % (os.path.join(w, "leave"),
                                       wait_file("left")))
        jid, _ = self.run_gc()
        t.join(10)
        self.assertEqual(len(events), 1, events)
        self.assertNotIn(events[0][1], (202, 201), events)
        lines = job_log_lines(self.d, jid)
        order = [next(i for i, l in enumerate(lines) if text in l)
                 for text in ("running readonly_enter_command",
                              "[readonly_enter_command] read-only now",
                              "running docker-registry garbage-collect",
                              "manifests eligible for deletion",
                              "running readonly_leave_command",
                              "[readonly_leave_command] writable again",
                              "freed ")]
        self.assertEqual(order, sorted(order), lines)
        self.assertEqual(self.checkin_of(jid)["purged_blobs"], 4)
        # writable again: a push goes through
        push_image(self.reg, "lib/after", "v1",
                   os.path.join(self.work, "l2"), layers=(1000,))

    def test_stop_failures_and_limits(self):
        """One daemon, a wrapper as registry_binary and commands whose
        behaviour files switch: stop kills the tool's process group and
        still leaves the window; a failing enter command stops before the
        sweep (no leave); a failing tool fails the job (leave runs)."""
        w = self.work
        trace = os.path.join(w, "trace")
        wrapper = os.path.join(w, "registry-wrapper")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    "echo gc >> %(t)s\n"
                    "if [ -f %(w)s/fail-gc ]; then echo 'it broke'; "
                    "exit 4; fi\n"
                    "if [ -f %(w)s/slow ]; then echo $$ > %(w)s/pid; "
                    "sleep 60; fi\n"
                    "exec %(bin)s \"$@\"\n" % {
                        "t": trace, "w": w,
                        "bin": shutil.which(rf.REGISTRY_BIN)})
        os.chmod(wrapper, 0o755)
        self.start(registry_binary=wrapper,
                   readonly_enter_command="test ! -f %s/fail-enter || "
                   "{ echo 'cannot enter' >&2; exit 3; }; echo enter >> %s"
                   % (w, trace),
                   readonly_leave_command="echo leave >> %s" % trace)
        d = self.d
        self.assertEqual(plugin_limits(d)["GARBAGE_COLLECTION"],
                         (1, 1, 1000))
        # validation: Harbor's parameter types
        st, _, doc = submit(d, "GARBAGE_COLLECTION", {"dry_run": "yes"})
        self.assertEqual(st, 400)
        self.assertIn("parameter dry_run must be a boolean, not a string",
                      json.dumps(doc))
        st, _, doc = submit(d, "GARBAGE_COLLECTION", {"workers": "4"})
        self.assertEqual(st, 400)

        def trace_lines():
            with open(trace) as f:
                return f.read().split()

        snapshot = tree(self.reg.root)
        # stop during the sweep
        open(os.path.join(w, "slow"), "w").close()
        jid = submit_ok(d, "GARBAGE_COLLECTION", {},
                        hook=self.hook.url("/hook"))
        pid = int(wait_for(lambda: os.path.exists(os.path.join(w, "pid"))
                           and open(os.path.join(w, "pid")).read().strip(),
                           timeout=20, what="the tool started"))
        t0 = time.monotonic()
        self.assertEqual(stop_job(d, jid), 204)
        wait_status(d, jid, "Stopped", timeout=20)
        wait_job_line(d, jid, "garbage-collect killed")
        wait_job_line(d, jid, "readonly_leave_command done")
        self.assertLess(time.monotonic() - t0, 5)

        def group_gone():
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return True
            return False
        # the wrapper and its sleep are gone (SIGTERM to the group)
        wait_for(group_gone, timeout=5, what="the tool's group to end")
        self.assertEqual(trace_lines(), ["enter", "gc", "leave"])
        self.assertEqual(self.checkins(jid), [])
        self.assertEqual(tree(self.reg.root), snapshot)
        os.unlink(os.path.join(w, "slow"))
        # the enter command fails: no sweep, no leave
        os.unlink(trace)
        open(os.path.join(w, "fail-enter"), "w").close()
        jid, _ = self.run_gc(status="Error")
        wait_job_line(d, jid, "readonly_enter_command failed (exit status "
                      "3): cannot enter")
        self.assertFalse(os.path.exists(trace))
        os.unlink(os.path.join(w, "fail-enter"))
        # the tool fails: the job fails, the window is left
        open(os.path.join(w, "fail-gc"), "w").close()
        jid, _ = self.run_gc(status="Error")
        wait_job_line(d, jid, "garbage-collect exited with status 4: it "
                      "broke")
        self.assertEqual(trace_lines(), ["enter", "gc", "leave"])
        self.assertEqual(tree(self.reg.root), snapshot)

    def test_missing_config_refuses_the_type(self):
        self.c = Cluster(gc_entry({"registry_binary": rf.REGISTRY_BIN}))
        d = self.c.start()
        wait_for(lambda: "setting registry_config is required" in d.log(),
                 what="the refusal")
        st, _, _ = submit(d, "GARBAGE_COLLECTION", {})
        self.assertNotEqual(st, 202)


if __name__ == "__main__":
    unittest.main()
