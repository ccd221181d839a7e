"""REPLICATION under real faults: registries killed, stalled, slow or
answering garbage in the middle of a copy, and berthd itself killed, and a
resource nested deep enough to overflow a REST thread's stack, with a real
berthd (REPLICATION with `isolation: process`), real docker-registry
processes (registry_fixture.py) and a small garbage registry in Python.

"Mid-copy" is made deterministic by a speed cap (the job's `speed`) and by
waiting until the destination holds upload bytes of the job's repository
(`_uploads/<id>/data` growing on its disk) before the fault.

A failed attempt waits out the job back-off (15 s or more); the tests skip
it with the Operations API (`POST /api/v1/retries/{id}`, the back-off of a
retry-set member set to now), as an operator would.

The REPLICATION entry caps the runner's memory (`max_rss_mb`): a garbage
answer that made it grow would end the attempt with "exceeded max_rss_mb"
instead of the registry error the tests expect."""
import http.server
import json
import os
import signal
import socketserver
import threading
import time
import unittest

from harness import (BERTHD, Cluster, drop_retries, job, job_log_lines,
                     retry_entries, submit, submit_ok, wait_for,
                     wait_status)
from registry_fixture import (Registry, blobs_on_disk, get_manifest,
                              manifest_digest, pull, push_image, sha256)


def _asan_build():
    try:
        with open(BERTHD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ASan's shadow memory and quarantine make every process bigger
RSS_MB = 160 if _asan_build() else 48
ENTRY = """  - name: REPLICATION
    file: replication.so
    isolation: process
    max_rss_mb: %d
    settings:
      parallel_blobs: 2
      stall_timeout_seconds: 2
      timeout_seconds: 5
      max_retries: 1
""" % RSS_MB

MiB = 1024 * 1024
C = D = SRC = DST = BAD = None
IMG = STALL_IMG = None


def setUpModule():
    global C, D, SRC, DST, BAD, IMG, STALL_IMG
    C = Cluster(ENTRY)
    try:
        SRC = Registry(C.path, name="src")
        DST = Registry(C.path, name="dst")
        BAD = GarbageRegistry()
        # 2 MiB: ~2 s at the 1024 KB/s the fault tests ask for
        IMG = push_image(SRC, "lib/big", "v1",
                         os.path.join(C.path, "layouts"),
                         layers=(MiB, MiB))
        # a source stopped mid-blob still has up to several MiB of it in
        # the sockets' buffers (loopback autotuning): a 16 MiB layer
        # outlasts them; ~4 s at 4096 KB/s
        STALL_IMG = push_image(SRC, "lib/stall", "v1",
                               os.path.join(C.path, "layouts"),
                               layers=(16 * MiB,))
        D = C.start()
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    for r in (SRC, DST, BAD):
        if r:
            r.close()
    if C:
        C.close()


# --- a registry answering garbage ----------------------------------------------

def _descriptor(data, mt="application/vnd.oci.image.layer.v1.tar"):
    return {"mediaType": mt, "digest": sha256(data), "size": len(data)}


def _manifest(config, layers=()):
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": list(layers)}).encode()


OCI = "application/vnd.oci.image.manifest.v1+json"
ENDLESS_CONFIG = _descriptor(b"c" * 1000,
                             "application/vnd.oci.image.config.v1+json")
GOOD_BODY = _manifest(_descriptor(b"{}",
                                  "application/vnd.oci.image.config.v1+json"))
# 1,100 layers of 9e15 bytes each: the sum is past 2^63
HUGE_SIZES = _manifest(
    _descriptor(b"{}", "application/vnd.oci.image.config.v1+json"),
    [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
      "digest": sha256(b"layer %d" % i), "size": 9 * 10 ** 15}
     for i in range(1100)])
WRONG_DIGEST = sha256(b"not the body")


def _fat_child(i):
    """An image manifest of almost 4 MiB (a padded annotation)."""
    return (b'{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[],'
            b'"annotations":{"i":"%d","pad":"' % (
                OCI.encode(), json.dumps(GOOD_CONFIG).encode(), i)
            + b"p" * (4 * MiB - 1024) + b'"}}')


GOOD_CONFIG = _descriptor(b"{}", "application/vnd.oci.image.config.v1+json")
# 14 children of almost 4 MiB: 55 MiB of manifests for one artifact
FAT_CHILDREN = {sha256(_fat_child(i)): i for i in range(14)}
FAT_INDEX = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": OCI, "digest": d, "size": len(_fat_child(i)),
                   "platform": {"os": "linux", "architecture": "a%d" % i}}
                  for d, i in FAT_CHILDREN.items()]}).encode()


class GarbageRegistry:
    """Answers GET /v2/ like a registry, then garbage per repository:
      g/notjson     a manifest that is not JSON (its digest is right)
      g/huge        a 5 MiB manifest (Content-Length)
      g/endless     a manifest body that never ends (chunked)
      g/mismatch    a manifest whose Docker-Content-Digest is another's
      g/bydigest    any manifest asked by digest: a body of another digest
      g/endlessblob a good manifest whose config blob never ends
      g/hugesizes   a manifest whose layer sizes add up past 2^63
      g/fatindex    an index of 14 children of almost 4 MiB each
      g/drip        a manifest trickling in at 5 bytes a second
    Blobs it does not serve: 404."""

    def __init__(self):
        outer = self
        self.bytes_sent = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client gave up on an endless answer

            def do_GET(self):
                outer._serve(self)

            do_HEAD = do_GET

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _count(self, n):
        with self.lock:
            self.bytes_sent += n

    def _send(self, h, status, body, ctype="application/json", extra=()):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in extra:
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
            self._count(len(body))

    def _endless(self, h, ctype, first=b""):
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if h.command == "HEAD":
            return
        chunk = first + b"x" * (64 * 1024 - len(first))
        while True:
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self._count(len(chunk))
            chunk = b"y" * 64 * 1024

    def _serve(self, h):
        path = h.path.split("?")[0]
        if path == "/v2/":
            return self._send(h, 200, b"{}")
        parts = path.split("/")
        # /v2/g/<name>/(manifests|blobs)/<ref>
        if len(parts) != 6 or parts[1] != "v2" or parts[2] != "g":
            return self._send(h, 404, b'{"errors":[{"code":"NAME_UNKNOWN",'
                                      b'"message":"repository name not '
                                      b'known to registry"}]}')
        name, kind, ref = parts[3], parts[4], parts[5]
        if kind == "blobs":
            if name == "endlessblob" and ref == ENDLESS_CONFIG["digest"]:
                return self._endless(h, "application/octet-stream")
            return self._send(h, 404, b'{"errors":[{"code":"BLOB_UNKNOWN",'
                                      b'"message":"blob unknown"}]}')
        if name == "notjson":
            body = b"<html><body>surprise</body></html>"
            return self._send(h, 200, body, OCI,
                              [("Docker-Content-Digest", sha256(body))])
        if name == "huge":
            body = b'{"schemaVersion":2,"pad":"' + b"p" * (5 * MiB) + b'"}'
            return self._send(h, 200, body, OCI)
        if name == "endless":
            return self._endless(h, OCI, b'{"schemaVersion":2,"pad":"')
        if name == "mismatch":
            return self._send(h, 200, GOOD_BODY, OCI,
                              [("Docker-Content-Digest", WRONG_DIGEST)])
        if name == "bydigest":
            return self._send(h, 200, GOOD_BODY, OCI)
        if name == "endlessblob":
            return self._send(h, 200, _manifest(ENDLESS_CONFIG), OCI)
        if name == "hugesizes":
            return self._send(h, 200, HUGE_SIZES, OCI)
        if name == "drip":
            h.send_response(200)
            h.send_header("Content-Type", OCI)
            h.send_header("Content-Length", str(len(GOOD_BODY)))
            h.end_headers()
            for i in range(len(GOOD_BODY)):
                h.wfile.write(GOOD_BODY[i:i + 1])
                h.wfile.flush()
                time.sleep(0.2)
            return
        if name == "fatindex":
            if ref in FAT_CHILDREN:
                return self._send(h, 200, _fat_child(FAT_CHILDREN[ref]), OCI)
            return self._send(h, 200, FAT_INDEX,
                              "application/vnd.oci.image.index.v1+json")
        return self._send(h, 404, b"{}")


# --- helpers ---------------------------------------------------------------------

def resource(url, repo, arts=()):
    return json.dumps({
        "type": "image",
        "metadata": {"repository": {"name": repo}, "artifacts": list(arts)},
        "registry": {"type": "docker-registry", "url": url,
                     "insecure": True}})


def copy_params(src_url, repo, dst_repo, arts, **kw):
    p = {"src_resource": resource(src_url, repo, arts),
         "dst_resource": resource(DST.url, dst_repo)}
    p.update(kw)
    return p


def detail(jid):
    st, _, doc = D.json("GET", "/api/v1/jobs/%s?detail=true" % jid)
    assert st == 200, (st, doc)
    return doc["detail"]


def uploading(reg, repo):
    """True once reg's disk holds upload bytes of repo (a copy into it is
    under way)."""
    up = os.path.join(reg.root, "docker", "registry", "v2", "repositories",
                      repo, "_uploads")
    for root, _, files in os.walk(up):
        if "data" in files and os.path.getsize(
                os.path.join(root, "data")) > 0:
            return True
    return False


def wait_failed_attempt(jid, timeout=30):
    """Waits for the attempt's end as a retry entry; returns its error."""
    wait_status(D, jid, "Error", timeout=timeout)
    r = C.client()
    try:
        wait_for(lambda: retry_entries(r, jid), timeout=10,
                 what="the retry entry")
    finally:
        r.close()
    return detail(jid)["last_error"]


def retry_now(jid):
    st, _, doc = D.json("POST", "/api/v1/retries/" + jid,
                        {"action": "retry"})
    assert st == 200 and doc["affected"] == 1, (st, doc)


def log_text(jid):
    return "\n".join(job_log_lines(D, jid))


class RegistryFaults(unittest.TestCase):

    def assert_copied(self, dst_repo, name, repo="lib/big", img=None):
        """dst_repo:v1 is repo:v1, byte for byte, and pulls."""
        img = img or IMG
        a = get_manifest(SRC, repo, "v1")
        b = get_manifest(DST, dst_repo, "v1")
        self.assertIsNotNone(b, "%s:v1 missing on the destination"
                             % dst_repo)
        self.assertEqual(a, b)
        self.assertEqual(manifest_digest(DST, dst_repo, "v1"), img.digest)
        self.assertLessEqual(set(img.blobs), blobs_on_disk(DST))
        # skopeo checks every blob's digest on the way out
        pull(DST, dst_repo, "v1", os.path.join(C.path, "pull-" + name))

    def start_copy(self, dst_repo, repo="lib/big", speed=1024):
        jid = submit_ok(D, "REPLICATION",
                        copy_params(SRC.url, repo, dst_repo,
                                    [{"tags": ["v1"]}], speed=speed))
        wait_for(lambda: uploading(DST, dst_repo), timeout=20,
                 what="upload bytes of %s on the destination" % dst_repo)
        return jid

    def test_a_destination_killed_mid_copy(self):
        jid = self.start_copy("mirror/killed")
        t0 = time.monotonic()
        DST.proc.kill()
        DST.proc.wait()
        DST.proc = None
        err = wait_failed_attempt(jid)
        self.assertLess(time.monotonic() - t0, 20)
        # the sentence names the registry that went away
        self.assertIn("registry " + DST.url, err)
        self.assertNotIn(SRC.url, err)
        self.assertFalse(detail(jid)["dead"])
        DST.start(keep_port=True)
        retry_now(jid)
        wait_status(D, jid, "Success", timeout=30)
        self.assert_copied("mirror/killed", "killed")

    def test_b_source_stalls_mid_copy(self):
        jid = self.start_copy("mirror/stalled", "lib/stall", speed=4096)
        os.kill(SRC.proc.pid, signal.SIGSTOP)
        try:
            try:
                err = wait_failed_attempt(jid)
            except AssertionError:
                print(job(D, jid), log_text(jid)[-3000:])
                raise
        finally:
            os.kill(SRC.proc.pid, signal.SIGCONT)
        self.assertIn("registry " + SRC.url, err)
        self.assertIn("stalled for 2 s", err)
        retry_now(jid)
        wait_status(D, jid, "Success", timeout=30)
        self.assert_copied("mirror/stalled", "stalled", "lib/stall",
                           STALL_IMG)

    def test_c_berthd_killed_mid_copy(self):
        global D
        jid = self.start_copy("mirror/crash")
        rev = job(D, jid)["revision"]
        C.kill(D)
        # the runner dies with its daemon (PR_SET_PDEATHSIG)
        D = C.start("b")
        # crash recovery (README "How a job runs"): the dead pool's job
        # counts as a failed attempt, is retried at once, runs to the end
        wait_status(D, jid, "Success", timeout=45)
        self.assertIn("job %s (REPLICATION) was running when pool" % jid,
                      D.log())
        self.assertGreater(job(D, jid)["revision"], rev)
        self.assert_copied("mirror/crash", "crash")

    def test_d_garbage_answers(self):
        cases = [
            ("notjson", [{"tags": ["v1"]}], "not a JSON object"),
            ("huge", [{"tags": ["v1"]}], "over the 4194304-byte cap"),
            ("endless", [{"tags": ["v1"]}], "over the 4194304-byte cap"),
            ("mismatch", [{"tags": ["v1"]}], "digest mismatch"),
            ("bydigest", [{"digest": WRONG_DIGEST}], "digest mismatch"),
            ("endlessblob", [{"tags": ["v1"]}],
             "more than the 1000 bytes"),
            ("hugesizes", [{"tags": ["v1"]}], "404 BLOB_UNKNOWN"),
            ("fatindex", [{"tags": ["v1"]}], "more than 16 MiB"),
            # timeout_seconds 5, max_retries 1: two attempts
            ("drip", [{"tags": ["v1"]}], "timeout: "),
        ]
        r = C.client()
        jobs = []
        for name, arts, _ in cases:
            jobs.append(submit_ok(D, "REPLICATION",
                                  copy_params(BAD.url, "g/" + name,
                                              "mirror/garbage-" + name,
                                              arts)))
        try:
            for (name, _, text), jid in zip(cases, jobs):
                err = wait_failed_attempt(jid)
                self.assertIn("registry " + BAD.url, err, name)
                self.assertIn(text, err, (name, log_text(jid)[-2000:]))
                self.assertNotIn("max_rss_mb", err, name)
                self.assertNotIn("signal", err, name)
                self.assertIsNone(manifest_digest(
                    DST, "mirror/garbage-" + name, "v1"), name)
        finally:
            for jid in jobs:
                drop_retries(r, jid)
            r.close()
        # the daemon still serves
        self.assertEqual(job(D, jobs[0])["status"], "Error")

    def test_e_deeply_nested_resource(self):
        # validate() runs on a REST API thread: a resource string of 700
        # nested arrays once overflowed its stack (berthd SIGSEGV)
        for text in ("[" * 700 + "]" * 700,
                     '{"metadata":' * 1200 + "1" + "}" * 1200):
            st, _, doc = submit(D, "REPLICATION",
                                {"src_resource": text, "dst_resource": text})
            self.assertEqual(st, 400, doc)
            self.assertIn("deeper than 64 levels", doc["details"])
        self.assertIsNone(D.proc.poll())


if __name__ == "__main__":
    unittest.main()
