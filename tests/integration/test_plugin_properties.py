"""berth_property() in a real job: the PROPS test plugin (tests/plugins/
props.c) runs under a real berthd and logs every property it reads into the
job log (STD_OUTPUT, so berthd's output). The values come from the
manifest's settings.properties, from Harbor's names in berthd's environment
(CORE_URL, REGISTRY_URL, ...) and from the service configuration (berth.*),
as documented at the `property` call of <berth/plugin.h>."""
import os
import shutil
import unittest

from harness import (TEST_PLUGINS, Berthd, RedisServer, TempDir,
                     harbor_config, wait_for)

MANIFEST = """plugin_dir: "%s"
plugins:
  - name: PROPS
    file: props.so
    settings:
      properties:
        registry_url: "http://registry-from-manifest:5000"
        answer: 42
"""


class PropertiesTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        t = cls.tmp.path
        cls.redis = RedisServer(t).start()
        plugin_dir = os.path.join(t, "plugins")
        os.makedirs(plugin_dir)
        shutil.copy(os.path.join(TEST_PLUGINS, "props.so"), plugin_dir)
        manifest = os.path.join(t, "plugins.yml")
        with open(manifest, "w") as f:
            f.write(MANIFEST % plugin_dir)
        cls.data = os.path.join(t, "data")
        cls.d = Berthd(t, harbor_config(cls.redis.sock, cls.data, manifest),
                       env={"CORE_URL": "http://core:8080",
                            "REGISTRY_URL": "http://registry-env:5000",
                            "REGISTRY_CONTROLLER_URL": None})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.redis.stop()
        cls.tmp.cleanup()
        assert rc == 0, "berthd exit status %r" % rc

    def run_job(self, params):
        st, _, doc = self.d.json("POST", "/api/v1/jobs", {"job": {
            "name": "PROPS", "parameters": params,
            "metadata": {"kind": "Generic", "unique": False}}})
        self.assertEqual(st, 202, doc)
        jid = doc["job"]["id"]

        def done():
            st, _, doc = self.d.json("GET", "/api/v1/jobs/" + jid)
            return st == 200 and doc["job"]["status"] == "Success" and doc
        wait_for(done, what="PROPS job %s Success" % jid)
        return jid

    def lines_of(self, jid):
        return [l for l in self.d.log().splitlines() if jid in l]

    def test_init_sees_properties(self):
        self.assertIn("init core_url=http://core:8080", self.d.log())

    def test_documented_names(self):
        jid = self.run_job({})
        want = [
            "property core_url=http://core:8080",
            "property registry_url=http://registry-from-manifest:5000",
            "property registry_controller_url unset",
            "property berth.data_dir=%s" % os.path.realpath(self.data),
            "property berth.namespace=berth_test",
            "property berth.workers=4",
        ]
        text = "\n".join(wait_for(
            lambda: (lambda ls: len(
                [l for l in ls if "property " in l]) >= len(want) and ls)(
                self.lines_of(jid)), what="property lines"))
        for w in want:
            self.assertIn(w, text)

    def test_manifest_values_and_unknown_names(self):
        jid = self.run_job({"names": ["answer", "postgresql_host"]})
        text = "\n".join(wait_for(
            lambda: (lambda ls: len(
                [l for l in ls if "property " in l]) >= 2 and ls)(
                self.lines_of(jid)), what="property lines"))
        self.assertIn("property answer=42", text)
        self.assertIn("property postgresql_host unset", text)


if __name__ == "__main__":
    unittest.main()
