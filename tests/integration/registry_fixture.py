"""Registry fixtures for the registry plugins' tests (REPLICATION,
GARBAGE_COLLECTION, RETENTION): real `docker-registry` processes (the CNCF
distribution registry, Debian's package) on loopback ports, OCI images built
here in Python and pushed with `skopeo`, and inspection helpers that look at
the registries over HTTP and on disk. Stdlib only, no network.

Registries
  reg = Registry(tmpdir, auth=None|"htpasswd"|"token", delete=True,
                 readonly=False, username="berth", password="berth-pw",
                 name="reg")
      Starts `docker-registry serve <config>` on 127.0.0.1:<free port> with
      filesystem storage under tmpdir/<name>/storage and waits until GET
      /v2/ answers. auth="htpasswd": basic auth from an htpasswd file
      (bcrypt through Python's crypt module, low cost so that requests stay
      fast). auth="token": the Bearer flow against a TokenServer started
      here (RS256 JWTs, see below). The registry's access log goes to
      reg.log_path.
    reg.url           "http://127.0.0.1:<port>"
    reg.host          "127.0.0.1:<port>" (for docker:// references)
    reg.port, reg.root (storage directory), reg.config_path, reg.log_path
    reg.username, reg.password, reg.auth, reg.token_server
    reg.creds         "user:password" for skopeo, or None without auth
    reg.start(keep_port=False)  (re)starts it (after stop(); keep_port:
                      on the same port, e.g. after wiping reg.root)
    reg.stop(); reg.restart(readonly=None)   same port; readonly changes
                      storage.maintenance.readonly.enabled when not None
    reg.request(method, path, body=None, headers=None, scope=None)
                      -> (status, {lower-case header: value}, body bytes);
                      authenticates as the registry's user (basic, or a
                      token for `scope`, by default derived from the path)
    reg.access_log()  [(method, path, status)] of the requests served
    reg.blob_uploads(repo=None)  count of completed blob uploads (the final
                      PUT .../blobs/uploads/... answered 201), to prove
                      that nothing was re-uploaded; mounts are not counted
    reg.close()       stops the registry (and its token server)
    Use as a context manager or call close(); storage stays in tmpdir.

  TokenServer(tmpdir, users={"berth": "berth-pw"}, service=..., issuer=...)
      A threaded HTTP server on 127.0.0.1:<port 0> answering GET /token
      (?service=&scope=...&account=) with {"token","access_token",
      "expires_in","issued_at"}. The JWT header carries alg RS256 and x5c
      (its self-signed certificate, which is the registry's
      rootcertbundle); signatures come from `openssl dgst -sha256 -sign`.
      Bad basic credentials get 401; anonymous requests get a token with no
      access. .realm, .requests (list of (account or None, [scopes])),
      .expires_in (settable), .stop().

Images (OCI image layouts written here, pushed with skopeo)
  img = build_image(dir, layers=(4096, 8192), created="2024-01-01T00:00:00Z",
                    gzip=False, platforms=None, tag="latest", label=None)
      Writes an OCI layout at dir: per platform one config (with
      `created`, os/architecture, rootfs.diff_ids) and one manifest whose
      layers are tar archives holding one file of random bytes of each
      given size (gzip-compressed when gzip). platforms=None builds one
      linux/amd64 image whose manifest is the layout's entry; a list such
      as [("linux","amd64"),("linux","arm64")] builds an OCI image index
      over those manifests. label adds a config label (two builds with the
      same label and layers differ only where the random data does).
    img.digest        digest of the top manifest (or index)
    img.media_type    its media type
    img.manifests     [{"digest","platform":(os,arch),"config","layers"}]
    img.blobs         every config and layer digest
    img.size          total bytes of the blobs (configs + layers)
    img.layout, img.tag
  push(img, reg, repo, tag=None) -> digest as the registry reports it
      skopeo copy --insecure-policy --dest-tls-verify=false [--all
      --preserve-digests] oci:<layout>:<img.tag> docker://<host>/<repo>:<tag>
  push_image(reg, repo, tag, tmpdir, **build_image kwargs) -> img
      build + push in one call (the layout goes to a fresh dir in tmpdir).

Inspection
  manifest_digest(reg, repo, ref)  -> "sha256:..." (HEAD, Docker-Content-
                      Digest) or None when the registry answers 404
  get_manifest(reg, repo, ref)     -> (media type, exact bytes) or None
  put_manifest(reg, repo, ref, media_type, body) -> HTTP status
  delete_manifest(reg, repo, digest) -> HTTP status
  list_tags(reg, repo)             -> sorted tags ([] for an unknown repo)
  blobs_on_disk(reg)               -> set of blob digests in the storage
  blob_path(reg, digest)           -> path of the blob's data file
  corrupt_blob(reg, digest)        flips bytes in the data file (size kept)
  skopeo_inspect(reg, repo, ref, raw=False) -> parsed JSON (raw: the
                      manifest as the registry serves it)
  pull(reg, repo, ref, dest_dir, all_platforms=True)
                      skopeo copy back out to an OCI layout (skopeo checks
                      every digest); raises SkopeoError on failure
  sha256(bytes) -> "sha256:<hex>"
"""
import base64
import gzip as gzipmod
import hashlib
import http.client
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import warnings

REGISTRY_BIN = os.environ.get("BERTH_DOCKER_REGISTRY", "docker-registry")
SKOPEO = os.environ.get("BERTH_SKOPEO", "skopeo")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])


class SkopeoError(RuntimeError):
    pass


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _bcrypt(password):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
        # cost 4 (16 rounds): the registry checks it on every request
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH,
                                                  rounds=16))


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


# --- token server -----------------------------------------------------------

class TokenServer:
    """Issues RS256 JWTs for the registry's token auth (see the module
    docstring)."""

    def __init__(self, tmpdir, users=None, service="berth-test-registry",
                 issuer="berth-test-issuer", expires_in=300):
        self.dir = os.path.join(tmpdir, "token-%d" % id(self))
        os.makedirs(self.dir, exist_ok=True)
        self.users = dict(users if users is not None
                          else {"berth": "berth-pw"})
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.requests = []
        self.key = os.path.join(self.dir, "key.pem")
        self.cert = os.path.join(self.dir, "cert.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "2",
             "-subj", "/CN=berth-test-token-issuer"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = subprocess.run(
            ["openssl", "x509", "-in", self.cert, "-outform", "DER"],
            check=True, stdout=subprocess.PIPE).stdout
        self.x5c = base64.b64encode(der).decode()
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer._serve(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.realm = "http://127.0.0.1:%d/token" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def _sign(self, data):
        return subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.key],
            input=data, check=True, stdout=subprocess.PIPE).stdout

    def token(self, account, scopes):
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3:
                continue
            # repository names may not contain ':', but be lenient
            typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
            access.append({"type": typ, "name": name,
                           "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": account or "",
                  "aud": self.service, "exp": now + self.expires_in,
                  "nbf": now - 10, "iat": now,
                  "jti": base64.b16encode(os.urandom(8)).decode(),
                  "access": access if account else []}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing = (_b64url(json.dumps(header).encode()) + "." +
                   _b64url(json.dumps(claims).encode()))
        return signing + "." + _b64url(self._sign(signing.encode()))

    def _serve(self, h):
        u = urllib.parse.urlparse(h.path)
        q = urllib.parse.parse_qs(u.query)
        account = None
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(
                    auth[6:]).decode().partition(":")
            except ValueError:
                user, pw = "", None
            if self.users.get(user) != pw:
                body = json.dumps({"errors": [{
                    "code": "UNAUTHORIZED",
                    "message": "bad credentials"}]}).encode()
                h.send_response(401)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
                with self.lock:
                    self.requests.append(("!" + user, q.get("scope", [])))
                return
            account = user
        scopes = []
        for s in q.get("scope", []):
            scopes += s.split(" ")
        with self.lock:
            self.requests.append((account, scopes))
        if u.path != "/token" or q.get("service", [""])[0] != self.service:
            h.send_response(400)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        tok = self.token(account, scopes)
        body = json.dumps({"token": tok, "access_token": tok,
                           "expires_in": self.expires_in,
                           "issued_at": time.strftime(
                               "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- registry ---------------------------------------------------------------

class Registry:
    """A docker-registry process (see the module docstring)."""

    def __init__(self, tmpdir, auth=None, delete=True, readonly=False,
                 username="berth", password="berth-pw", name="reg"):
        if auth not in (None, "htpasswd", "token"):
            raise ValueError("auth must be None, 'htpasswd' or 'token'")
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.root = os.path.join(self.dir, "storage")
        os.makedirs(self.root, exist_ok=True)
        self.config_path = os.path.join(self.dir, "config.yml")
        self.log_path = os.path.join(self.dir, "registry.log")
        self.auth = auth
        self.delete = delete
        self.readonly = readonly
        self.username = username
        self.password = password
        self.token_server = None
        self.proc = None
        self.port = None
        self._tokens = {}
        if auth == "htpasswd":
            self.htpasswd = os.path.join(self.dir, "htpasswd")
            with open(self.htpasswd, "w") as f:
                f.write("%s:%s\n" % (username, _bcrypt(password)))
        elif auth == "token":
            self.token_server = TokenServer(self.dir,
                                            users={username: password})
        self.start()

    # config and process

    def _config(self):
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  formatter: text",
            "  accesslog:",
            "    disabled: false",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % json.dumps(self.root),
            "  delete:",
            "    enabled: %s" % ("true" if self.delete else "false"),
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "    readonly:",
            "      enabled: %s" % ("true" if self.readonly else "false"),
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  secret: berth-test-registry-secret",
            "health:",
            "  storagedriver:",
            "    enabled: false",
        ]
        if self.auth == "htpasswd":
            lines += ["auth:", "  htpasswd:", "    realm: berth-test",
                      "    path: %s" % json.dumps(self.htpasswd)]
        elif self.auth == "token":
            t = self.token_server
            lines += ["auth:", "  token:",
                      "    realm: %s" % json.dumps(t.realm),
                      "    service: %s" % json.dumps(t.service),
                      "    issuer: %s" % json.dumps(t.issuer),
                      "    rootcertbundle: %s" % json.dumps(t.cert)]
        return "\n".join(lines) + "\n"

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def creds(self):
        if self.auth is None:
            return None
        return "%s:%s" % (self.username, self.password)

    def _answers(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/v2/")
            st = c.getresponse().status
            c.close()
            return st in (200, 401)
        except OSError:
            return False

    def start(self, keep_port=False):
        for attempt in range(10):
            if not keep_port or self.port is None:
                self.port = _free_port()
            with open(self.config_path, "w") as f:
                f.write(self._config())
            logf = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", self.config_path],
                stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)
            logf.close()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._answers():
                    return self
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
            log = self._log_text()
            if "address already in use" not in log[-2000:] or keep_port:
                if keep_port and attempt < 5:
                    time.sleep(0.2)  # the old socket may linger briefly
                    continue
                raise AssertionError("docker-registry did not start:\n" +
                                     log[-3000:])
        raise AssertionError("docker-registry: no free port")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, readonly=None):
        self.stop()
        if readonly is not None:
            self.readonly = readonly
        self.start(keep_port=True)
        return self

    def close(self):
        self.stop()
        if self.token_server:
            self.token_server.stop()
            self.token_server = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # HTTP with the registry's own credentials

    def _auth_header(self, scope):
        if self.auth == "htpasswd":
            return "Basic " + base64.b64encode(
                self.creds.encode()).decode()
        if self.auth == "token":
            tok = self._tokens.get(scope)
            if tok is None or tok[1] < time.monotonic():
                t = self.token_server
                q = urllib.parse.urlencode(
                    [("service", t.service)] +
                    ([("scope", scope)] if scope else []))
                c = http.client.HTTPConnection("127.0.0.1", t.port,
                                               timeout=10)
                c.request("GET", "/token?" + q, headers={
                    "Authorization": "Basic " + base64.b64encode(
                        self.creds.encode()).decode()})
                r = c.getresponse()
                doc = json.loads(r.read())
                c.close()
                tok = (doc["token"], time.monotonic() + 60)
                self._tokens[scope] = tok
            return "Bearer " + tok[0]
        return None

    def request(self, method, path, body=None, headers=None, scope=None):
        if scope is None:
            m = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/", path)
            if m:
                act = {"GET": "pull", "HEAD": "pull",
                       "DELETE": "delete"}.get(method, "pull,push")
                scope = "repository:%s:%s" % (m.group(1), act)
            elif path.startswith("/v2/_catalog"):
                scope = "registry:catalog:*"
        h = dict(headers or {})
        a = self._auth_header(scope)
        if a:
            h["Authorization"] = a
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return (r.status, {k.lower(): v for k, v in r.getheaders()},
                    data)
        finally:
            c.close()

    # the access log

    _ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[\d.]+"'
                         r' (\d{3}) ')

    def access_log(self):
        return [(m.group(1), m.group(2), int(m.group(3)))
                for m in self._ACCESS.finditer(self._log_text())]

    def blob_uploads(self, repo=None):
        n = 0
        for method, path, st in self.access_log():
            m = re.match(r"^/v2/(.+)/blobs/uploads/[^/?]+", path)
            if method == "PUT" and st == 201 and m and (
                    repo is None or m.group(1) == repo):
                n += 1
        return n


# --- image building ---------------------------------------------------------

class _Random(io.RawIOBase):
    """n random bytes as a file object (tarfile reads it in chunks)."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left, 1 << 20)
        b[:k] = os.urandom(k)
        self.left -= k
        return k


class _HashWriter:
    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data):
        self.h.update(data)
        self.n += len(data)
        return self.f.write(data)

    def flush(self):
        self.f.flush()


class Image:
    def __init__(self, layout, tag):
        self.layout = layout
        self.tag = tag
        self.digest = None
        self.media_type = None
        self.manifests = []
        self.blobs = []
        self.size = 0


def _put_blob(layout, data):
    d = sha256(data)
    p = os.path.join(layout, "blobs", "sha256", d[7:])
    with open(p, "wb") as f:
        f.write(data)
    return d


def _layer(layout, size, gz):
    """A tar of one random file; returns (digest, size, diff_id)."""
    tmp = os.path.join(layout, "blobs", "sha256", "tmp-layer")
    with open(tmp, "wb") as raw:
        out = _HashWriter(raw)
        inner = gzipmod.GzipFile(fileobj=out, mode="wb", compresslevel=1,
                                 mtime=0) if gz else None
        diff = _HashWriter(inner if gz else out)
        with tarfile.open(fileobj=diff, mode="w|",
                          format=tarfile.PAX_FORMAT) as tf:
            ti = tarfile.TarInfo("data/random-%s.bin" %
                                 base64.b16encode(os.urandom(4)).decode()
                                 .lower())
            ti.size = size
            ti.mtime = 0
            tf.addfile(ti, _Random(size))
        if gz:
            inner.close()
    digest = "sha256:" + out.h.hexdigest()
    os.rename(tmp, os.path.join(layout, "blobs", "sha256", digest[7:]))
    return digest, out.n, "sha256:" + diff.h.hexdigest()


def build_image(layout, layers=(4096, 8192), created="2024-01-01T00:00:00Z",
                gzip=False, platforms=None, tag="latest", label=None):
    """Writes an OCI image layout; see the module docstring."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    img = Image(layout, tag)
    plats = platforms or [("linux", "amd64")]
    descs = []
    for os_, arch in plats:
        ldescs, diff_ids = [], []
        for size in layers:
            d, n, diff = _layer(layout, size, gzip)
            ldescs.append({"mediaType": OCI_LAYER_GZIP if gzip else OCI_LAYER,
                           "digest": d, "size": n})
            diff_ids.append(diff)
            img.size += n
        cfg = {"created": created, "architecture": arch, "os": os_,
               "config": {"Labels": {"berth.test": label or "image",
                                     "berth.nonce": base64.b16encode(
                                         os.urandom(8)).decode()}},
               "rootfs": {"type": "layers", "diff_ids": diff_ids},
               "history": [{"created": created,
                            "created_by": "registry_fixture.py"}]}
        cfg_bytes = json.dumps(cfg, sort_keys=True).encode()
        cfg_digest = _put_blob(layout, cfg_bytes)
        img.size += len(cfg_bytes)
        man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest,
                          "size": len(cfg_bytes)},
               "layers": ldescs}
        man_bytes = json.dumps(man, indent=2).encode()
        man_digest = _put_blob(layout, man_bytes)
        img.manifests.append({"digest": man_digest, "platform": (os_, arch),
                              "config": cfg_digest,
                              "layers": [l["digest"] for l in ldescs],
                              "size": len(man_bytes)})
        img.blobs += [cfg_digest] + [l["digest"] for l in ldescs]
        descs.append({"mediaType": OCI_MANIFEST, "digest": man_digest,
                      "size": len(man_bytes),
                      "platform": {"architecture": arch, "os": os_}})
    if platforms is None:
        top = dict(descs[0])
        del top["platform"]
        img.digest, img.media_type = descs[0]["digest"], OCI_MANIFEST
    else:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": descs}
        ib = json.dumps(index, indent=2).encode()
        img.digest, img.media_type = _put_blob(layout, ib), OCI_INDEX
        top = {"mediaType": OCI_INDEX, "digest": img.digest, "size": len(ib)}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)
    return img


def _skopeo(args, timeout=300):
    p = subprocess.run([SKOPEO, "--insecure-policy"] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    if p.returncode != 0:
        raise SkopeoError("skopeo %s: %s" % (" ".join(args),
                                             p.stderr.decode(errors="replace")
                                             .strip()[-2000:]))
    return p.stdout


def push(img, reg, repo, tag=None):
    tag = tag or img.tag
    # --preserve-digests: push the bytes as built (skopeo would otherwise
    # compress uncompressed layers and rewrite the manifest)
    args = ["copy", "--dest-tls-verify=false", "--preserve-digests"]
    if img.media_type == OCI_INDEX:
        args.append("--all")
    if reg.creds:
        args += ["--dest-creds", reg.creds]
    args += ["oci:%s:%s" % (img.layout, img.tag),
             "docker://%s/%s:%s" % (reg.host, repo, tag)]
    _skopeo(args)
    return manifest_digest(reg, repo, tag)


def push_image(reg, repo, tag, tmpdir, **kw):
    layout = os.path.join(tmpdir, "layout-%s-%s" % (
        repo.replace("/", "_"), base64.b16encode(os.urandom(4)).decode()))
    kw.setdefault("tag", tag)
    img = build_image(layout, **kw)
    d = push(img, reg, repo, tag)
    assert d == img.digest, (d, img.digest)
    return img


# --- inspection -------------------------------------------------------------

def manifest_digest(reg, repo, ref):
    st, h, _ = reg.request("HEAD", "/v2/%s/manifests/%s" % (repo, ref),
                           headers={"Accept": ACCEPT})
    if st == 404:
        return None
    if st != 200:
        raise AssertionError("HEAD %s:%s -> %d" % (repo, ref, st))
    return h.get("docker-content-digest")


def get_manifest(reg, repo, ref):
    st, h, body = reg.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                              headers={"Accept": ACCEPT})
    if st == 404:
        return None
    if st != 200:
        raise AssertionError("GET %s:%s -> %d %r" % (repo, ref, st, body))
    return h.get("content-type"), body


def put_manifest(reg, repo, ref, media_type, body):
    st, _, _ = reg.request("PUT", "/v2/%s/manifests/%s" % (repo, ref),
                           body=body, headers={"Content-Type": media_type})
    return st


def delete_manifest(reg, repo, digest):
    st, _, _ = reg.request("DELETE", "/v2/%s/manifests/%s" % (repo, digest))
    return st


def list_tags(reg, repo):
    st, _, body = reg.request("GET", "/v2/%s/tags/list" % repo)
    if st == 404:
        return []
    if st != 200:
        raise AssertionError("tags of %s -> %d %r" % (repo, st, body))
    return sorted(json.loads(body).get("tags") or [])


def blob_path(reg, digest):
    algo, hexd = digest.split(":", 1)
    return os.path.join(reg.root, "docker", "registry", "v2", "blobs", algo,
                        hexd[:2], hexd, "data")


def blobs_on_disk(reg):
    out = set()
    base = os.path.join(reg.root, "docker", "registry", "v2", "blobs")
    if not os.path.isdir(base):
        return out
    for algo in os.listdir(base):
        for pre in os.listdir(os.path.join(base, algo)):
            for hexd in os.listdir(os.path.join(base, algo, pre)):
                if os.path.exists(os.path.join(base, algo, pre, hexd,
                                               "data")):
                    out.add("%s:%s" % (algo, hexd))
    return out


def corrupt_blob(reg, digest):
    """Flips bytes in the middle of the blob's data file, size unchanged
    (the registry serves it as it is: its filesystem driver does not
    re-verify)."""
    p = blob_path(reg, digest)
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        off = size // 2
        f.seek(off)
        b = f.read(16)
        f.seek(off)
        f.write(bytes(x ^ 0xFF for x in b))


def skopeo_inspect(reg, repo, ref, raw=False):
    sep = "@" if ref.startswith("sha256:") else ":"
    args = ["inspect", "--tls-verify=false"]
    if raw:
        args.append("--raw")
    if reg.creds:
        args += ["--creds", reg.creds]
    args.append("docker://%s/%s%s%s" % (reg.host, repo, sep, ref))
    return json.loads(_skopeo(args, timeout=60))


def pull(reg, repo, ref, dest_dir, all_platforms=True):
    sep = "@" if ref.startswith("sha256:") else ":"
    args = ["copy", "--src-tls-verify=false"]
    if all_platforms:
        args.append("--all")
    if reg.creds:
        args += ["--src-creds", reg.creds]
    os.makedirs(dest_dir, exist_ok=True)
    args += ["docker://%s/%s%s%s" % (reg.host, repo, sep, ref),
             "oci:%s:pulled" % dest_dir]
    _skopeo(args)
    return True


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
