"""Foundation tests over real HTTP: auth, routing errors, body cap, stats,
config, plugins and reload, the generated secret, embedded Redis, HTTPS,
configuration errors and Redis going away. Each class starts its own
redis-server (unix socket) and berthd (port 0)."""
import json
import os
import shutil
import signal
import stat
import subprocess
import time
import unittest

from harness import (BERTHD, NS, PLUGINS, SECRET, SOURCE, TEST_PLUGINS,
                     Berthd, Cluster, RedisServer, TempDir, demo_entry,
                     demo_manifest, harbor_config, wait_for, write)


class Daemon(unittest.TestCase):
    """Base: one redis + one berthd (DEMO + manifest_extra) for the whole
    class."""
    manifest_extra = ""
    config_extra = ""
    env = None

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(demo_entry() + cls.manifest_extra,
                        config=lambda sock, data, manifest: harbor_config(
                            sock, data, manifest, cls.config_extra))
        cls.redis = cls.c.redis
        cls.plugin_dir = cls.c.plugin_dir
        cls.manifest = cls.c.manifest
        cls.d = cls.c.start(env=cls.env)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()


class HttpTests(Daemon):
    def test_stats_is_open_and_lists_this_pool(self):
        st, h, doc = self.d.json("GET", "/api/v1/stats", auth=False)
        self.assertEqual(st, 200, doc)
        self.assertEqual(h["Content-Type"], "application/json")
        pools = doc["worker_pools"]
        self.assertEqual(len(pools), 1)
        p = pools[0]
        self.assertEqual(len(p["worker_pool_id"]), 24)
        self.assertEqual(p["job_names"], ["DEMO"])
        self.assertEqual(p["concurrency"], 4)
        self.assertEqual(p["status"], "Healthy")
        self.assertLessEqual(abs(p["heartbeat_at"] - time.time()), 10)

    def test_stats_with_query_needs_auth(self):
        st, _, doc = self.d.json("GET", "/api/v1/stats?x=1", auth=False)
        self.assertEqual(st, 401)
        self.assertEqual(doc["code"], 10011)

    def test_auth_failures_have_spec_details(self):
        cases = [
            ({}, "header 'Authorization' missing"),
            ({"Authorization": "   "}, "header 'Authorization' missing"),
            ({"Authorization": "Bearer x"},
             "'Authorization' should start with 'Harbor-Secret'"),
            ({"Authorization": "Harbor-Secret   "},
             "empty secret is not allowed"),
            ({"Authorization": "Harbor-Secret wrong"}, "unauthorized"),
            ({"Authorization": "Harbor-Secret " + SECRET + "x"},
             "unauthorized"),
        ]
        for headers, details in cases:
            st, _, doc = self.d.json("GET", "/api/v1/config", headers=headers,
                                     auth=False)
            self.assertEqual(st, 401, headers)
            self.assertEqual(doc, {"code": 10011, "message": "unauthorized",
                                   "details": details})

    def test_auth_trims_whitespace_and_needs_no_space(self):
        for v in ["  Harbor-Secret " + SECRET + "  ",
                  "Harbor-Secret" + SECRET]:
            st, _, _ = self.d.json("GET", "/api/v1/config",
                                   headers={"Authorization": v}, auth=False)
            self.assertEqual(st, 200, v)

    def test_auth_runs_before_routing(self):
        st, _, doc = self.d.json("GET", "/api/v1/nope", auth=False)
        self.assertEqual(st, 401)

    def test_unknown_path_is_json_404(self):
        for path in ["/api/v1/nope", "/api/v1/stats/", "/", "/api/v2/stats",
                     "/api/v1/plugins/reload/x"]:
            st, h, doc = self.d.json("GET", path)
            self.assertEqual(st, 404, path)
            self.assertEqual(h["Content-Type"], "application/json")
            self.assertEqual(doc["code"], 10010)
            self.assertEqual(doc["message"], "object is not found")

    def test_wrong_method_is_json_405(self):
        for method, path, allow in [("DELETE", "/api/v1/stats", "GET"),
                                    ("POST", "/api/v1/config", "GET"),
                                    ("GET", "/api/v1/plugins/reload", "POST")]:
            st, h, doc = self.d.json(method, path)
            self.assertEqual(st, 405, path)
            self.assertEqual(h["Allow"], allow)
            self.assertEqual(doc["code"], 10017)
            self.assertEqual(doc["message"], "method not allowed")

    def test_oversize_body_is_413(self):
        big = "x" * 70000
        st, h, doc = self.d.json("POST", "/api/v1/plugins/reload", body=big)
        self.assertEqual(st, 413)
        self.assertEqual(doc["code"], 10000)
        # chunked, no Content-Length: cut off at the cap as well
        c = self.d.conn()
        c.putrequest("POST", "/api/v1/plugins/reload")
        c.putheader("Authorization", "Harbor-Secret " + SECRET)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        chunk = b"y" * 8192
        try:
            for _ in range(10):
                c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            c.send(b"0\r\n\r\n")
        except OSError:
            pass
        r = c.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(json.loads(r.read())["code"], 10000)
        c.close()
        # the daemon is fine afterwards
        st, _, _ = self.d.json("GET", "/api/v1/stats", auth=False)
        self.assertEqual(st, 200)

    def test_config_route_uses_go_field_names(self):
        st, _, doc = self.d.json("GET", "/api/v1/config")
        self.assertEqual(st, 200)
        self.assertEqual(doc, {"redis_pool_config": {
            "RedisURL": self.redis.sock, "Namespace": "berth_test",
            "IdleTimeoutSecond": 3600}})

    def test_plugins_lists_demo_with_limits(self):
        st, _, doc = self.d.json("GET", "/api/v1/plugins")
        self.assertEqual(st, 200)
        names = [p["name"] for p in doc["plugins"]]
        self.assertEqual(names, ["DEMO"])
        demo = doc["plugins"][0]
        self.assertEqual(demo["max_fails"], 3)
        self.assertEqual(demo["max_concurrency"], 1)
        self.assertEqual(demo["priority"], 1)
        self.assertEqual(demo["abi"], "1.1")  # the SDK's BERTH_ABI_MAJOR.MINOR
        self.assertEqual(doc["refused"], [])

    def test_redis_registration(self):
        r = self.redis.client()
        self.assertEqual(r("GET", NS + ":_schema_version"), "1.8.1")
        self.assertEqual(r("GET", NS + ":jobs:DEMO:max_concurrency"), "1")
        self.assertIn("DEMO", r("SMEMBERS", NS + ":known_jobs"))
        pools = r("SMEMBERS", NS + ":worker_pools")
        self.assertEqual(len(pools), 1)
        h = r("HGETALL", NS + ":worker_pools:" + pools[0])
        h = dict(zip(h[::2], h[1::2]))
        self.assertEqual(h["concurrency"], "4")
        self.assertEqual(h["pid"], str(self.d.proc.pid))
        self.assertEqual(h["job_names"], "DEMO")
        self.assertEqual(len(h["worker_ids"].split(",")), 4)
        r.close()


class ReloadTests(Daemon):
    manifest_extra = """  - name: BROKEN_MAJOR
    file: wrong_major.so
"""

    def plugins(self):
        st, _, doc = self.d.json("GET", "/api/v1/plugins")
        self.assertEqual(st, 200)
        return doc

    def test_1_refused_plugin_is_reported_and_daemon_runs(self):
        doc = self.plugins()
        refused = {r["name"]: r["reason"] for r in doc["refused"]}
        self.assertIn("BROKEN_MAJOR", refused)
        self.assertIn("ABI major 2", refused["BROKEN_MAJOR"])
        self.assertEqual([p["name"] for p in doc["plugins"]], ["DEMO"])
        self.assertIn("wrong_major.so", self.d.log())

    def _add(self, name, so):
        shutil.copy(os.path.join(TEST_PLUGINS, so), self.plugin_dir)
        with open(self.manifest, "a") as f:
            f.write("  - name: %s\n    file: %s\n" % (name, so))

    def test_2_reload_over_rest_loads_new_plugin(self):
        self._add("GOOD_B", "good_b.so")
        st, _, doc = self.d.json("POST", "/api/v1/plugins/reload")
        self.assertEqual(st, 200, doc)
        self.assertIn("GOOD_B", [p["name"] for p in doc["plugins"]])
        # the heartbeat now advertises the new type
        st, _, stats = self.d.json("GET", "/api/v1/stats", auth=False)
        self.assertIn("GOOD_B", stats["worker_pools"][0]["job_names"])
        r = self.redis.client()
        self.assertIn("GOOD_B", r("SMEMBERS", NS + ":known_jobs"))
        r.close()

    def test_3_sighup_loads_new_plugin(self):
        self._add("GOOD_A", "good_a.so")
        self.d.send_signal(signal.SIGHUP)
        wait_for(lambda: "GOOD_A" in [p["name"] for p in
                                      self.plugins()["plugins"]],
                 what="GOOD_A after SIGHUP")

    def test_4_broken_manifest_keeps_registry(self):
        with open(self.manifest) as f:
            good = f.read()
        write(self.manifest, "plugins: [\n")
        st, _, doc = self.d.json("POST", "/api/v1/plugins/reload")
        self.assertEqual(st, 500)
        self.assertIn("plugins.yml", doc["details"])
        self.assertIn("DEMO", [p["name"] for p in self.plugins()["plugins"]])
        write(self.manifest, good)


class SecretTests(unittest.TestCase):
    def test_generated_secret_is_private_and_reused(self):
        tmp = TempDir()
        try:
            redis = RedisServer(tmp.path).start()
            manifest = os.path.join(tmp.path, "plugins.yml")
            write(manifest, demo_manifest(PLUGINS))
            data = os.path.join(tmp.path, "data")
            cfg = harbor_config(redis.sock, data, manifest)
            d = Berthd(tmp.path, cfg, env={"CORE_SECRET": None}).start()
            path = os.path.join(data, "core_secret")
            mode = stat.S_IMODE(os.stat(path).st_mode)
            self.assertEqual(mode, 0o600)
            secret = open(path).read().strip()
            self.assertEqual(len(secret), 64)
            self.assertIn(path, d.log())
            st, _, _ = d.json("GET", "/api/v1/config", secret=secret)
            self.assertEqual(st, 200)
            st, _, _ = d.json("GET", "/api/v1/config")  # SECRET is not it
            self.assertEqual(st, 401)
            self.assertEqual(d.stop(), 0)
            d2 = Berthd(tmp.path, cfg, env={"CORE_SECRET": None}).start()
            st, _, _ = d2.json("GET", "/api/v1/config", secret=secret)
            self.assertEqual(st, 200)
            self.assertEqual(d2.stop(), 0)
            # a secret file others can read is refused
            os.chmod(path, 0o644)
            d3 = Berthd(tmp.path, cfg, env={"CORE_SECRET": None})
            d3.start(wait=False)
            self.assertEqual(d3.proc.wait(30), 1)
            self.assertIn("chmod 600", d3.log())
            redis.stop()
        finally:
            tmp.cleanup()


class EmbeddedRedisTests(unittest.TestCase):
    def test_embedded_redis_serves_and_stops_with_daemon(self):
        tmp = TempDir()
        try:
            manifest = os.path.join(tmp.path, "plugins.yml")
            write(manifest, demo_manifest(PLUGINS))
            data = os.path.join(tmp.path, "data")
            d = Berthd(tmp.path, harbor_config("embedded", data, manifest))
            d.start()
            st, _, doc = d.json("GET", "/api/v1/stats", auth=False)
            self.assertEqual(st, 200, doc)
            sock = os.path.join(data, "redis.sock")
            self.assertTrue(os.path.exists(sock))
            st, _, doc = d.json("GET", "/api/v1/config")
            self.assertEqual(doc["redis_pool_config"]["RedisURL"],
                             "unix://" + sock)
            self.assertTrue(any(n.startswith("appendonly")
                                for n in os.listdir(data)))
            self.assertEqual(d.stop(), 0)
            out = subprocess.run(["pgrep", "-f", sock], capture_output=True)
            self.assertEqual(out.stdout, b"", "redis-server left running")
        finally:
            tmp.cleanup()


class HttpsTests(unittest.TestCase):
    def test_https_config_serves_tls(self):
        tmp = TempDir()
        try:
            cert = os.path.join(tmp.path, "c.crt")
            key = os.path.join(tmp.path, "c.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-keyout", key, "-out", cert, "-days",
                            "1", "-subj", "/CN=127.0.0.1"], check=True,
                           capture_output=True)
            redis = RedisServer(tmp.path).start()
            manifest = os.path.join(tmp.path, "plugins.yml")
            write(manifest, demo_manifest(PLUGINS))
            cfg = harbor_config(redis.sock, os.path.join(tmp.path, "data"),
                                manifest)
            # protocol stays http: the https_config block alone forces TLS
            cfg += "https_config:\n  cert: %s\n  key: %s\n" % (cert, key)
            d = Berthd(tmp.path, cfg)
            d.scheme = "https"
            d.start()
            st, _, doc = d.json("GET", "/api/v1/stats", auth=False)
            self.assertEqual(st, 200, doc)
            self.assertEqual(d.stop(), 0)
            redis.stop()
        finally:
            tmp.cleanup()


class ConfigErrorTests(unittest.TestCase):
    def run_berthd(self, text, *args, env=None):
        tmp = TempDir()
        try:
            cfg = os.path.join(tmp.path, "berth.yml")
            write(cfg, text)
            e = dict(os.environ)
            e.update(env or {})
            return subprocess.run([BERTHD, "-c", cfg, "--plugin-dir", PLUGINS]
                                  + list(args), env=e,
                                  capture_output=True, text=True, timeout=30)
        finally:
            tmp.cleanup()

    def test_bundled_config_checks_clean(self):
        p = subprocess.run([BERTHD, "-c", os.path.join(SOURCE, "etc/berth.yml"),
                            "--check-config", "--strict", "--plugin-dir",
                            PLUGINS],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("is valid", p.stdout)
        self.assertIn("loaded DEMO", p.stdout)

    def test_broken_yaml_names_position(self):
        p = self.run_berthd("protocol: http\nport: [1,\n")
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r"berth\.yml:\d+:\d+: ")

    def test_wrong_type_names_key_and_position(self):
        text = harbor_config("/tmp/x.sock", "/tmp/x", "plugins.yml")
        text = text.replace("workers: 4", "workers: many")
        p = self.run_berthd(text, "--check-config")
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r"berth\.yml:4:12: worker_pool\.workers: expected an integer")

    def test_unknown_key_warns_then_strict_fails(self):
        text = harbor_config("/tmp/x.sock", "/tmp/x", os.path.join(
            SOURCE, "etc/plugins.yml")).replace("workers: 4", "wrokers: 4")
        p = self.run_berthd(text, "--check-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("did you mean 'workers'", p.stderr)
        p = self.run_berthd(text, "--check-config", "--strict")
        self.assertEqual(p.returncode, 2)
        self.assertIn("wrokers", p.stderr)

    def test_bad_env_override_is_named(self):
        text = harbor_config("/tmp/x.sock", "/tmp/x", "plugins.yml")
        p = self.run_berthd(text, "--check-config",
                            env={"JOB_SERVICE_PORT": "eighty"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("JOB_SERVICE_PORT", p.stderr)

    def test_missing_config_file(self):
        p = subprocess.run([BERTHD, "-c", "/nonexistent/berth.yml"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/berth.yml", p.stderr)


class CheckConfigOutputTests(unittest.TestCase):
    """What --check-config prints: quiet by default (no INFO lines unless
    -v or LOG_LEVEL), each finding once, every unknown key in strict mode,
    did-you-mean hints, and never "is valid" beside an error."""

    def check(self, manifest_text, *args, config_extra="", replace=None,
              env=None):
        tmp = TempDir()
        try:
            manifest = os.path.join(tmp.path, "plugins.yml")
            write(manifest, manifest_text)
            text = harbor_config("/nonexistent.sock",
                                 os.path.join(tmp.path, "data"), manifest,
                                 config_extra)
            for old, new in (replace or []):
                text = text.replace(old, new)
            cfg = os.path.join(tmp.path, "berth.yml")
            write(cfg, text)
            e = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
            e.update(env or {})
            return subprocess.run([BERTHD, "-c", cfg, "--check-config"]
                                  + list(args), env=e, capture_output=True,
                                  text=True, timeout=30)
        finally:
            tmp.cleanup()

    def assert_valid(self, p):
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("is valid", p.stdout)
        self.assertNotIn("berthd:", p.stderr)

    def assert_not_valid(self, p, rc):
        self.assertEqual(p.returncode, rc, p.stdout + p.stderr)
        self.assertNotIn("is valid", p.stdout + p.stderr)

    def test_bundled_config_is_quiet(self):
        cfg = os.path.join(SOURCE, "etc/berth.yml")
        env = {k: v for k, v in os.environ.items() if k != "LOG_LEVEL"}
        p = subprocess.run([BERTHD, "-c", cfg, "--check-config",
                            "--plugin-dir", PLUGINS], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assert_valid(p)
        self.assertEqual(p.stderr, "")
        self.assertIn("loaded DEMO", p.stdout)
        # -v and LOG_LEVEL bring the INFO lines back
        for extra, e in ((["-v"], {}), ([], {"LOG_LEVEL": "INFO"})):
            p = subprocess.run([BERTHD, "-c", cfg, "--check-config",
                                "--plugin-dir", PLUGINS] + extra,
                               env=dict(env, **e), capture_output=True,
                               text=True, timeout=30)
            self.assert_valid(p)
            self.assertIn("info: plugin DEMO loaded from", p.stderr)

    def test_each_warning_once(self):
        m = demo_manifest(PLUGINS).replace("    priority: 1\n",
                                           "    prority: 1\n")
        p = self.check(m, replace=[("workers: 4", "wrokers: 4")])
        self.assert_valid(p)
        for w in ("unknown key 'wrokers' at worker_pool.wrokers (did you "
                  "mean 'workers'?)",
                  "unknown key 'prority' in plugins[0] (did you mean "
                  "'priority'?)"):
            self.assertEqual(p.stderr.count(w), 1, p.stderr)
        self.assertEqual(len(p.stderr.splitlines()), 2, p.stderr)
        for line in p.stderr.splitlines():
            self.assertTrue(line.startswith("warning: "), line)

    def test_strict_reports_every_unknown_key(self):
        p = self.check(demo_manifest(PLUGINS), "--strict",
                       replace=[("workers: 4", "wrokers: 4"),
                                ("backend:", "backedn:")],
                       config_extra="  api_thread: 4\n")
        self.assert_not_valid(p, 2)
        for k in ("'wrokers'", "'backedn'", "'api_thread'"):
            self.assertEqual(p.stderr.count("unknown key " + k), 1, p.stderr)
        self.assertIn("did you mean 'workers'", p.stderr)
        self.assertIn("did you mean 'backend'", p.stderr)
        self.assertIn("3 unknown keys (strict mode)", p.stderr)
        # the manifest's keys too, all of them
        m = demo_manifest(PLUGINS).replace("    priority: 1\n",
                                           "    prority: 1\n    bogus: 2\n")
        p = self.check(m + "plugin_dri: x\n", "--strict")
        self.assert_not_valid(p, 1)
        for k in ("'prority'", "'bogus'", "'plugin_dri'"):
            self.assertEqual(p.stderr.count("unknown key " + k), 1, p.stderr)
        self.assertIn("3 unknown keys (strict mode)", p.stderr)

    def test_manifest_typo_gets_did_you_mean(self):
        m = demo_manifest(PLUGINS).replace("    file: demo.so",
                                           "    flie: demo.so")
        p = self.check(m)
        self.assert_not_valid(p, 1)
        self.assertIn("unknown key 'flie' in plugins[0] (did you mean "
                      "'file'?)", p.stderr)
        self.assertIn("is 'flie' on line", p.stderr)
        p = self.check(m, "--strict")
        self.assert_not_valid(p, 1)
        self.assertIn("did you mean 'file'", p.stderr)
        # a file name off by a letter: the closest file of plugin_dir
        p = self.check(demo_manifest(PLUGINS).replace("file: demo.so",
                                                      "file: dmeo.so"))
        self.assert_not_valid(p, 1)
        self.assertIn("(did you mean 'demo.so'?)", p.stderr)
        self.assertEqual(p.stderr.count("dmeo.so: No such file"), 1,
                         p.stderr)

    def test_missing_plugin_dir_is_an_error_only(self):
        p = self.check(demo_manifest("/nonexistent/plugins"))
        self.assert_not_valid(p, 1)
        self.assertIn("/nonexistent/plugins: No such file or directory",
                      p.stderr)


class EnvOverrideTests(Daemon):
    env = {"JOB_SERVICE_POOL_WORKERS": "7",
           "JOB_SERVICE_POOL_REDIS_NAMESPACE": "berth_env"}

    def test_env_overrides_apply(self):
        st, _, doc = self.d.json("GET", "/api/v1/stats", auth=False)
        self.assertEqual(st, 200, doc)
        self.assertEqual(doc["worker_pools"][0]["concurrency"], 7)
        st, _, doc = self.d.json("GET", "/api/v1/config")
        self.assertEqual(doc["redis_pool_config"]["Namespace"], "berth_env")
        r = self.redis.client()
        self.assertEqual(len(r("SMEMBERS", "{berth_env}:worker_pools")), 1)
        r.close()


class RedisDownTests(Daemon):
    def test_redis_down_gives_5xx_and_recovers(self):
        self.redis.stop()
        st, _, doc = self.d.json("GET", "/api/v1/stats", auth=False)
        self.assertEqual(st, 500)
        self.assertEqual(doc["code"], 10004)
        self.assertIn("redis", doc["details"].lower())
        # the daemon is alive and other routes still answer
        st, _, _ = self.d.json("GET", "/api/v1/plugins")
        self.assertEqual(st, 200)
        self.redis.start()  # empty again: the heartbeat must re-register

        def healthy():
            st, _, doc = self.d.json("GET", "/api/v1/stats", auth=False)
            return st == 200
        wait_for(healthy, timeout=20, step=0.2,
                 what="stats after redis is back")
        r = self.redis.client()
        self.assertEqual(r("GET", NS + ":jobs:DEMO:max_concurrency"), "1")
        r.close()


if __name__ == "__main__":
    unittest.main()
