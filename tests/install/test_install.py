"""The installed layout, as a new user gets it from the README:
`cmake --install build --prefix <prefix>` into a temporary prefix, then
the installed berthd with the installed configuration as it is:

  - every bundled plugin the build made (build/plugins/*.so) is installed,
    and every file the manifest names is among them;
  - the installed plugins.yml points at the installed plugin directory (the
    source tree's keeps ../build/plugins), the rest of it unchanged;
  - `berthd -c <prefix>/etc/berth/berth.yml --check-config` (also with
    --strict) says "is valid", exits 0 and prints nothing on stderr;
  - berthd started with that configuration (on port 0 and a private
    redis-server through the environment, no edit of the files) serves
    every job type of the manifest: GET /api/v1/plugins lists them all,
    none refused;
  - the systemd unit and the man page are installed with the prefix's
    paths.

Environment (tests/install/install.cmake): BERTH_BUILD, BERTH_SOURCE, and
PYTHONPATH with tests/integration for the harness."""
import glob
import os
import re
import subprocess
import unittest

import harness
from harness import Berthd, RedisServer, TempDir

BUILD = os.environ.get("BERTH_BUILD", "build")
SOURCE = os.environ.get("BERTH_SOURCE", ".")


def manifest_entries(text):
    """[(name, file, enabled)] of a plugins.yml in the bundled file's
    shape (one `- name:` line per entry, keys indented below it)."""
    out = []
    for chunk in re.split(r"\n  - ", "\n" + text)[1:]:
        name = re.search(r"^name:\s*(\S+)", chunk, re.M)
        file = re.search(r"^\s*file:\s*(\S+)", chunk, re.M)
        enabled = not re.search(r"^\s*enabled:\s*false", chunk, re.M)
        if name and file:
            out.append((name.group(1), file.group(1), enabled))
    return out


def read(path):
    with open(path) as f:
        return f.read()


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LOG_LEVEL", "BERTH_PLUGIN_DIR", "BERTH_DATA_DIR")
           and not k.startswith("JOB_SERVICE_")}
    env.update(extra)
    return env


class InstalledLayoutTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.prefix = os.path.join(cls.tmp.path, "prefix")
        p = subprocess.run(["cmake", "--install", BUILD, "--prefix",
                            cls.prefix], capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 0:
            raise AssertionError("cmake --install failed:\n%s%s"
                                 % (p.stdout, p.stderr))
        cls.berthd = os.path.join(cls.prefix, "sbin", "berthd")
        cls.etc = os.path.join(cls.prefix, "etc", "berth")
        cls.config = os.path.join(cls.etc, "berth.yml")
        dirs = glob.glob(os.path.join(cls.prefix, "lib*", "**",
                                      "berth", "plugins"), recursive=True)
        if len(dirs) != 1:
            raise AssertionError("installed plugin directories: %s" % dirs)
        cls.plugin_dir = dirs[0]
        cls.entries = manifest_entries(read(os.path.join(SOURCE, "etc",
                                                         "plugins.yml")))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_bundled_plugin_is_installed(self):
        built = {f for f in os.listdir(os.path.join(BUILD, "plugins"))
                 if f.endswith(".so")}
        installed = set(os.listdir(self.plugin_dir))
        self.assertTrue(built, "no plugin in %s/plugins" % BUILD)
        self.assertEqual(built - installed, set())
        for name, file, _ in self.entries:
            self.assertIn(file, installed, name)

    def test_manifest_points_at_the_installed_plugins(self):
        src = read(os.path.join(SOURCE, "etc", "plugins.yml"))
        dst = read(os.path.join(self.etc, "plugins.yml"))
        self.assertIn("\nplugin_dir: ../build/plugins\n", src)
        dirs = re.findall(r"^plugin_dir:\s*(.*)$", dst, re.M)
        self.assertEqual(dirs, [self.plugin_dir])
        # nothing else changed
        strip = lambda t: [l for l in t.splitlines()
                           if not l.startswith("plugin_dir:")
                           and not l.startswith("# set by the installation")]
        self.assertEqual(strip(src), strip(dst))
        self.assertEqual(read(self.config),
                         read(os.path.join(SOURCE, "etc", "berth.yml")))

    def test_check_config_is_valid(self):
        for extra in ([], ["--strict"]):
            p = subprocess.run([self.berthd, "-c", self.config,
                                "--check-config"] + extra,
                               env=clean_env(BERTH_DATA_DIR=os.path.join(
                                   self.tmp.path, "check")),
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(p.stderr, "")
            self.assertIn("configuration %s is valid" % self.config,
                          p.stdout)
            for name, _, enabled in self.entries:
                if enabled:
                    self.assertIn("loaded %s (%s/" % (name, self.plugin_dir),
                                  p.stdout)

    def test_starts_with_every_bundled_plugin(self):
        d_dir = os.path.join(self.tmp.path, "run")
        os.makedirs(d_dir)
        redis = RedisServer(d_dir).start()
        saved = harness.BERTHD
        harness.BERTHD = self.berthd
        d = Berthd(d_dir, "", env=clean_env(
            JOB_SERVICE_POOL_REDIS_URL=redis.sock,
            BERTH_DATA_DIR=os.path.join(d_dir, "data"),
            BERTH_LISTEN_ADDRESS="127.0.0.1"))
        d.cfg = self.config  # the installed file, not a generated one
        try:
            d.start()
            st, _, doc = d.json("GET", "/api/v1/plugins")
            self.assertEqual(st, 200, doc)
            self.assertEqual(doc["refused"], [], doc)
            loaded = {p["name"]: p["file"] for p in doc["plugins"]}
            want = {name for name, _, enabled in self.entries if enabled}
            self.assertEqual(set(loaded), want)
            for name, file in loaded.items():
                self.assertEqual(os.path.dirname(file), self.plugin_dir,
                                 name)
            st, _, doc = d.json("GET", "/api/v1/stats", auth=False)
            self.assertEqual(st, 200, doc)
            self.assertEqual(sorted(doc["worker_pools"][0]["job_names"]),
                             sorted(want))
            self.assertEqual(d.stop(), 0, d.log()[-3000:])
            self.assertEqual(harness.sanitizer_lines(d.log()), [])
        finally:
            harness.BERTHD = saved
            d.stop()
            redis.stop()

    def test_unit_and_man_page(self):
        unit = read(os.path.join(self.prefix, "lib", "systemd", "system",
                                 "berthd.service"))
        self.assertIn("ExecStart=%s -c %s\n" % (self.berthd, self.config),
                      unit)
        self.assertIn("User=berth\n", unit)
        self.assertIn("ProtectSystem=strict\n", unit)
        self.assertTrue(os.path.exists(os.path.join(
            self.prefix, "share", "man", "man8", "berthd.8")))
        # the runner of `isolation: process` is found next to berthd
        self.assertTrue(os.access(os.path.join(
            self.prefix, "sbin", "berth-plugin-runner"), os.X_OK))


if __name__ == "__main__":
    unittest.main()
