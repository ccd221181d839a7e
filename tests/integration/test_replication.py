"""REPLICATION (plugins/replication) over a real berthd and real registries:
docker-registry processes from registry_fixture.py, images built at test
time and pushed with skopeo, results checked on the registries themselves
(manifest bytes, tags, blobs on disk, the access log) and pulled back with
skopeo.

Registries (one set for the module):
  SRC  htpasswd auth, the source of every test
  DST  no auth, the usual destination
  TOK  token auth (Bearer flow against the fixture's token server)
The plugin runs with parallel_blobs 3 and chunk_bytes 65536 (so that a
chunked copy of a few hundred KiB takes several PATCHes)."""
import json
import os
import time
import unittest

from harness import (Cluster, job, job_log_lines, run_error, stop_job,
                     submit, submit_ok, wait_for, wait_job_line, wait_status)
from receivers import Receiver
from registry_fixture import (Registry, blob_path, blobs_on_disk,
                              corrupt_blob, get_manifest, list_tags,
                              manifest_digest, pull, push_image,
                              put_manifest)

ENTRY = """  - name: REPLICATION
    file: replication.so
    isolation: process
    settings:
      parallel_blobs: 3
      chunk_bytes: 65536
      stall_timeout_seconds: 20
"""

C = D = SRC = DST = TOK = None
IMG = {}


def setUpModule():
    global C, D, SRC, DST, TOK
    C = Cluster(ENTRY)
    try:
        t = C.path
        SRC = Registry(t, auth="htpasswd", name="src")
        DST = Registry(t, name="dst")
        TOK = Registry(t, auth="token", name="tok")
        lay = os.path.join(t, "layouts")
        IMG["app"] = push_image(SRC, "lib/app", "v1", lay,
                                layers=(2048, 150000))
        IMG["multi"] = push_image(SRC, "lib/multi", "v1", lay,
                                  layers=(1000, 30000),
                                  platforms=[("linux", "amd64"),
                                             ("linux", "arm64")])
        IMG["other"] = push_image(SRC, "lib/other", "v1", lay,
                                  layers=(5000,))
        IMG["corrupt"] = push_image(SRC, "lib/corrupt", "v1", lay,
                                    layers=(4000, 200000))
        IMG["slow"] = push_image(SRC, "lib/slow", "v1", lay,
                                 layers=(900 * 1024,))
        IMG["big"] = push_image(SRC, "lib/big", "v1", lay,
                                layers=(1500 * 1024, 1500 * 1024))
        IMG["chunk"] = push_image(SRC, "lib/chunk", "v1", lay,
                                  layers=(300 * 1024, 1000), gzip=True)
        D = C.start()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for r in (SRC, DST, TOK):
        if r:
            r.close()
    if C:
        C.close()


# --- parameters ---------------------------------------------------------------

def resource(reg, repo, arts=None, password=None, cred=True, **kw):
    r = {"type": "image",
         "metadata": {"repository": {"name": repo},
                      "artifacts": arts if arts is not None else []},
         "registry": {"type": "docker-registry", "url": reg.url,
                      "insecure": True}}
    if reg.auth and cred:
        r["registry"]["credential"] = {
            "type": "basic", "access_key": reg.username,
            "access_secret": password or reg.password}
    r.update(kw)
    return json.dumps(r)


def art(tags=None, digest=None):
    a = {"type": "image"}
    if tags:
        a["tags"] = tags
    if digest:
        a["digest"] = digest
    return a


def params(src, dst, **kw):
    p = {"src_resource": src, "dst_resource": dst}
    p.update(kw)
    return p


def copy_params(repo, dst_repo, arts, src=None, dst=None, dst_kw=None,
                **kw):
    return params(resource(src or SRC, repo, arts),
                  resource(dst or DST, dst_repo, **(dst_kw or {})), **kw)


def run(p, timeout=30, **kw):
    jid = submit_ok(D, "REPLICATION", p, **kw)
    st = wait_status(D, jid, ["Success", "Error", "Stopped"],
                     timeout=timeout)
    assert st["status"] == "Success", (st, job_log_lines(D, jid)[-15:])
    return jid


def log_text(jid):
    return "\n".join(job_log_lines(D, jid))


class Replication(unittest.TestCase):

    def assert_same(self, repo, ref, dst_repo, dst_ref, dst=None):
        a = get_manifest(SRC, repo, ref)
        b = get_manifest(dst or DST, dst_repo, dst_ref)
        self.assertIsNotNone(b, "%s:%s missing on the destination" %
                             (dst_repo, dst_ref))
        self.assertEqual(a[1], b[1])     # byte-identical manifests
        self.assertEqual(a[0], b[0])

    # -- copies ---------------------------------------------------------------

    def test_tag(self):
        hook = Receiver().start()
        try:
            hook.on("/hook")
            jid = run(copy_params("lib/app", "mirror/app", [art(["v1"])]),
                      hook=hook.url("/hook"))
            self.assert_same("lib/app", "v1", "mirror/app", "v1")
            self.assertEqual(manifest_digest(DST, "mirror/app", "v1"),
                             IMG["app"].digest)
            pull(DST, "mirror/app", "v1", os.path.join(C.path, "p-tag"))
            self.assertLessEqual(set(IMG["app"].blobs), blobs_on_disk(DST))
            text = log_text(jid)
            self.assertIn("copied in", text)
            # progress check-ins reach the status hook; the last one
            # counts everything
            def last_checkin():
                docs = [json.loads(r.body) for r in hook.requests("/hook")]
                cis = [json.loads(d["check_in"]) for d in docs
                       if d.get("check_in")]
                return cis and cis[-1]["artifacts_done"] == 1 and cis[-1]
            ci = wait_for(last_checkin, what="the final check-in")
            self.assertEqual(ci["artifacts"], 1)
            self.assertEqual(ci["blobs"], 3)
            self.assertEqual(ci["blobs_done"], 3)
            self.assertGreaterEqual(ci["bytes"], 150000)
        finally:
            hook.stop()

    def test_digest(self):
        d = IMG["other"].digest
        run(copy_params("lib/other", "mirror/bydigest", [art(digest=d)]))
        self.assert_same("lib/other", d, "mirror/bydigest", d)
        self.assertEqual(list_tags(DST, "mirror/bydigest"), [])
        pull(DST, "mirror/bydigest", d, os.path.join(C.path, "p-dig"))

    def test_index(self):
        img = IMG["multi"]
        run(copy_params("lib/multi", "mirror/multi", [art(["v1"])]))
        self.assert_same("lib/multi", "v1", "mirror/multi", "v1")
        for m in img.manifests:
            self.assert_same("lib/multi", m["digest"], "mirror/multi",
                             m["digest"])
        self.assertLessEqual(set(img.blobs), blobs_on_disk(DST))
        pull(DST, "mirror/multi", "v1", os.path.join(C.path, "p-idx"))

    def test_idempotent_rerun(self):
        p = copy_params("lib/app", "mirror/again", [art(["v1"])])
        run(p)
        before = DST.blob_uploads("mirror/again")
        self.assertEqual(before, 3)
        jid = run(p)
        self.assertEqual(DST.blob_uploads("mirror/again"), before)
        self.assertIn("on the destination already", log_text(jid))
        # a new tag of the same image: manifest pushed, blobs skipped
        body = get_manifest(SRC, "lib/app", "v1")
        self.assertEqual(put_manifest(SRC, "lib/app", "v1-alias",
                                      body[0], body[1]), 201)
        jid = run(copy_params("lib/app", "mirror/again",
                              [art(["v1-alias"])]))
        self.assertEqual(DST.blob_uploads("mirror/again"), before)
        self.assertEqual(log_text(jid).count("skipped, the destination "
                                             "has it"), 3)
        self.assertEqual(manifest_digest(DST, "mirror/again", "v1-alias"),
                         IMG["app"].digest)

    def test_override(self):
        run(copy_params("lib/other", "mirror/ovr", [art(["v1"])]))
        # lib/app:v1 onto mirror/ovr:v1, which holds lib/other's image
        p = params(resource(SRC, "lib/app", [art(["v1"])]),
                   resource(DST, "mirror/ovr", override=False))
        jid = run(p)
        self.assertEqual(manifest_digest(DST, "mirror/ovr", "v1"),
                         IMG["other"].digest)
        self.assertIn("override is off", log_text(jid))
        p = params(resource(SRC, "lib/app", [art(["v1"])]),
                   resource(DST, "mirror/ovr", override=True))
        run(p)
        self.assertEqual(manifest_digest(DST, "mirror/ovr", "v1"),
                         IMG["app"].digest)

    def test_all_tags(self):
        # no artifacts: every tag of the source repository
        run(copy_params("lib/multi", "mirror/alltags", []))
        self.assertEqual(list_tags(DST, "mirror/alltags"),
                         list_tags(SRC, "lib/multi"))

    def test_mount_within_one_registry(self):
        before = SRC.blob_uploads()
        jid = run(params(resource(SRC, "lib/app", [art(["v1"])]),
                         resource(SRC, "team/app")))
        self.assertEqual(SRC.blob_uploads(), before)
        self.assertEqual(log_text(jid).count("mounted from lib/app"), 3)
        self.assert_same("lib/app", "v1", "team/app", "v1", dst=SRC)

    def test_chunked(self):
        run(copy_params("lib/chunk", "mirror/chunk", [art(["v1"])],
                        copy_by_chunk=True))
        self.assert_same("lib/chunk", "v1", "mirror/chunk", "v1")
        patches = [p for m, p, st in DST.access_log()
                   if m == "PATCH" and p.startswith("/v2/mirror/chunk/")]
        self.assertGreaterEqual(len(patches), 5)   # 300 KiB / 64 KiB
        pull(DST, "mirror/chunk", "v1", os.path.join(C.path, "p-chunk"))

    def test_token_auth(self):
        n = len(TOK.token_server.requests)
        run(copy_params("lib/app", "mirror/tok", [art(["v1"])], dst=TOK))
        self.assert_same("lib/app", "v1", "mirror/tok", "v1", dst=TOK)
        got = TOK.token_server.requests[n:]
        self.assertTrue(any(acc == TOK.username and
                            "repository:mirror/tok:pull,push" in sc
                            for acc, sc in got), got)
        # and as the source, into DST
        run(copy_params("mirror/tok", "mirror/fromtok", [art(["v1"])],
                        src=TOK))
        self.assertEqual(manifest_digest(DST, "mirror/fromtok", "v1"),
                         IMG["app"].digest)

    # -- deletion -------------------------------------------------------------

    def test_delete(self):
        run(copy_params("lib/other", "mirror/del", [art(["v1"])]))
        self.assertIsNotNone(manifest_digest(DST, "mirror/del", "v1"))
        p = params(resource(SRC, "lib/other", [art(["v1"])], deleted=True),
                   resource(DST, "mirror/del"))
        run(p)
        self.assertIsNone(manifest_digest(DST, "mirror/del", "v1"))
        self.assertIsNone(manifest_digest(DST, "mirror/del",
                                          IMG["other"].digest))
        jid = run(p)   # again: nothing left to delete, still a success
        self.assertIn("nothing to delete", log_text(jid))

    def test_delete_tag_only(self):
        run(copy_params("lib/other", "mirror/deltag", [art(["v1"])]))
        body = get_manifest(DST, "mirror/deltag", "v1")
        self.assertEqual(put_manifest(DST, "mirror/deltag", "keep",
                                      body[0], body[1]), 201)
        p = params(resource(SRC, "lib/other", [art(["v1"])], deleted=True,
                            is_delete_tag=True),
                   resource(DST, "mirror/deltag"))
        r = C.client()
        try:
            # "keep" shares the manifest: the API cannot drop v1 alone
            run_error(D, r, "REPLICATION", p, "cannot delete the tag")
        finally:
            r.close()
        self.assertEqual(list_tags(DST, "mirror/deltag"), ["keep", "v1"])
        p = params(resource(SRC, "lib/other", [art(["v1", "keep"])],
                            deleted=True, is_delete_tag=True),
                   resource(DST, "mirror/deltag"))
        run(p)
        self.assertEqual(list_tags(DST, "mirror/deltag"), [])

    # -- failures -------------------------------------------------------------

    def test_auth_failure(self):
        r = C.client()
        try:
            p = params(resource(SRC, "lib/app", [art(["v1"])],
                                password="wrong"),
                       resource(DST, "mirror/noauth"))
            _, lines = run_error(D, r, "REPLICATION", p, "401")
            text = "\n".join(lines)
            self.assertIn(SRC.url, text)
            self.assertNotIn("wrong", text)
            # a token service refusing the credentials
            p = params(resource(SRC, "lib/app", [art(["v1"])]),
                       resource(TOK, "mirror/noauth", password="wrong"))
            run_error(D, r, "REPLICATION", p, "401")
        finally:
            r.close()
        self.assertIsNone(manifest_digest(DST, "mirror/noauth", "v1"))

    def test_corrupt_blob(self):
        img = IMG["corrupt"]
        bad = img.manifests[0]["layers"][1]
        corrupt_blob(SRC, bad)
        r = C.client()
        try:
            _, lines = run_error(D, r, "REPLICATION",
                                 copy_params("lib/corrupt", "mirror/corrupt",
                                             [art(["v1"])]),
                                 "digest mismatch")
        finally:
            r.close()
        self.assertIn(bad, "\n".join(lines))
        self.assertIsNone(manifest_digest(DST, "mirror/corrupt", "v1"))
        self.assertNotIn(bad, blobs_on_disk(DST))
        self.assertFalse(os.path.exists(blob_path(DST, bad)))

    def test_stop_mid_copy(self):
        # 3 MiB at 200 KB/s: ~15 s unless stopped
        jid = submit_ok(D, "REPLICATION",
                        copy_params("lib/big", "mirror/stopped",
                                    [art(["v1"])], speed=200))
        wait_status(D, jid, "Running")
        wait_job_line(D, jid, "copying lib/big:v1")
        time.sleep(0.5)    # well inside the first blobs
        t0 = time.monotonic()
        self.assertEqual(stop_job(D, jid), 204)
        wait_status(D, jid, "Stopped", timeout=10)
        wait_for(lambda: "stopped after" in log_text(jid), timeout=10,
                 what="the run to return")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertIsNone(manifest_digest(DST, "mirror/stopped", "v1"))

    def test_speed_limit(self):
        # 900 KiB at 300 KB/s: ~3 s (the bucket may start with a second's
        # worth); unlimited, the same copy takes a fraction of a second
        t0 = time.monotonic()
        run(copy_params("lib/slow", "mirror/slow", [art(["v1"])],
                        speed=300))
        slow = time.monotonic() - t0
        self.assertGreater(slow, 1.8)
        self.assertLess(slow, 20)
        self.assert_same("lib/slow", "v1", "mirror/slow", "v1")

    # -- validation -----------------------------------------------------------

    def test_validate(self):
        ok_src = resource(SRC, "lib/app", [art(["v1"])])
        ok_dst = resource(DST, "mirror/x")
        cases = [
            ({"dst_resource": ok_dst}, "src_resource is missing"),
            (params("{not json", ok_dst), "not valid JSON"),
            (params(ok_src, json.dumps({"type": "image"})),
             "dst_resource.registry is missing"),
            (params(resource(SRC, "Lib/App", [art(["v1"])]), ok_dst),
             "not a valid repository name"),
            (params(resource(SRC, "lib/app", [art(digest="sha256:12")]),
                    ok_dst), "is not a digest"),
            (params(resource(SRC, "lib/app", [{"type": "image"}]), ok_dst),
             "neither a digest nor tags"),
            (params(ok_src, ok_dst, speed="fast"),
             "speed must be a number"),
            (params(ok_src, ok_dst, copy_by_chunk="yes"),
             "copy_by_chunk must be true or false"),
            (params(ok_src, json.dumps({"registry": {
                "url": DST.url, "credential": {"type": "secret"}}})),
             "is not supported"),
            (params(ok_src, json.dumps({"registry": {"url": "ftp://x"}})),
             "must start with http:// or https://"),
        ]
        for p, text in cases:
            st, _, doc = submit(D, "REPLICATION", p)
            self.assertEqual(st, 400, (p, doc))
            self.assertIn(text, json.dumps(doc), p)


if __name__ == "__main__":
    unittest.main()
