"""Upgrading a plugin under a running berthd (README "Upgrading a plugin").

The VERSIONED test plugin (tests/plugins/versioned.c) is built twice,
versioned_v1.so and versioned_v2.so, differing only in the version string
its run() logs and writes. berthd maps a private copy of each plugin file
(under <data_dir>/plugin-copies), so:
  - overwriting the listed .so IN PLACE (same inode, as `cp` does) while a
    v1 job runs changes nothing the daemon runs: no crash, the job ends on
    v1, and new jobs still run v1 until a reload;
  - a reload notices the new content and loads it as a new generation
    beside the old one: new jobs run v2, while the v1 generation is listed
    under "retiring" until its last job ends, then unloaded (fini runs, its
    copy is removed);
  - the safe upgrade (a temporary name in the same directory, rename, then
    SIGHUP) works the same way.
A plugin file or plugin_dir writable by group or others is refused with one
log line naming the file, the reason and the fix."""
import os
import re
import shutil
import signal
import unittest

from harness import (Cluster, TEST_PLUGINS, job_log_lines, run_ok,
                     submit_ok, wait_for, wait_job_line, wait_log,
                     wait_status)


def entries(fini_marker):
    # the Cluster copies versioned_v1.so into plugin_dir; the tests then
    # write other versions over that name
    return ("  - name: VERSIONED\n"
            "    file: versioned_v1.so\n"
            "    settings: {fini_marker: \"%s\"}\n" % fini_marker)


def describe(d):
    st, _, doc = d.json("GET", "/api/v1/plugins")
    assert st == 200, (st, doc)
    return doc


def entry(doc, listname, name="VERSIONED"):
    found = [p for p in doc[listname] if p["name"] == name]
    return found[0] if found else None


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class UpgradeTests(unittest.TestCase):
    def cluster(self):
        """A cluster whose plugin_dir holds v1 as versioned_v1.so."""
        c = Cluster(lambda t: entries(os.path.join(t, "fini")))
        self.addCleanup(c.close)
        self.so = os.path.join(c.plugin_dir, "versioned_v1.so")
        os.chmod(self.so, 0o755)
        self.fini = os.path.join(c.path, "fini")
        return c

    def test_overwrite_in_place_then_reload(self):
        c = self.cluster()
        d = c.start()
        doc = describe(d)
        v1 = entry(doc, "plugins")
        self.assertEqual(v1["version"], "v1")
        copies = os.path.realpath(os.path.join(c.path, "a", "data",
                                               "plugin-copies"))
        self.assertEqual(os.path.dirname(v1["copy"]), copies)
        self.assertTrue(os.path.exists(v1["copy"]))
        self.assertEqual(os.stat(copies).st_mode & 0o777, 0o700)

        # a long v1 job: it waits for the gate file
        gate = os.path.join(c.path, "gate")
        out = os.path.join(c.path, "out")
        long_job = submit_ok(d, "VERSIONED", {"gate": gate, "out": out})
        wait_job_line(d, long_job, "VERSIONED v1 running")

        # cp over the loaded file in place: same inode, v2's bytes
        inode = os.stat(self.so).st_ino
        shutil.copyfile(os.path.join(TEST_PLUGINS, "versioned_v2.so"),
                        self.so)
        self.assertEqual(os.stat(self.so).st_ino, inode)

        # more jobs: the daemon lives, they still run v1 (no reload yet)
        for _ in range(3):
            jid = run_ok(d, "VERSIONED")
            wait_job_line(d, jid, "VERSIONED v1 done")
        self.assertIsNone(d.proc.poll(), d.log()[-3000:])
        self.assertEqual(wait_status(d, long_job, "Running")["status"],
                         "Running")

        # reload: v2 serves new jobs, v1 drains the long one
        st, _, doc = d.json("POST", "/api/v1/plugins/reload")
        self.assertEqual(st, 200, doc)
        v2 = entry(doc, "plugins")
        self.assertEqual(v2["version"], "v2")
        self.assertGreater(v2["generation"], v1["generation"])
        self.assertNotEqual(v2["hash"], v1["hash"])
        old = entry(doc, "retiring")
        self.assertIsNotNone(old, doc)
        self.assertEqual((old["version"], old["generation"], old["refs"]),
                         ("v1", v1["generation"], 1))
        wait_log(d, r"plugin VERSIONED: file \S+versioned_v1.so changed "
                 r"\(generation %d was inode %d.*\): generation %d loaded"
                 % (v1["generation"], inode, v2["generation"]))
        wait_log(d, r"plugin VERSIONED: new jobs run generation %d; "
                 r"generation %d is retired and drains its running jobs"
                 % (v2["generation"], v1["generation"]))
        for _ in range(2):
            jid = run_ok(d, "VERSIONED", {"out": out})
            wait_job_line(d, jid, "VERSIONED v2 done")
            self.assertFalse([l for l in job_log_lines(d, jid)
                              if "v1" in l])
        self.assertEqual(read(self.fini), "")   # v1 not unloaded yet
        self.assertTrue(os.path.exists(v1["copy"]))

        # the long job ends, on v1's code; then v1 is unloaded
        with open(gate, "w"):
            pass
        wait_status(d, long_job, "Success")
        wait_job_line(d, long_job, "VERSIONED v1 done")
        self.assertIn("v1 %s\n" % long_job, read(out))
        wait_log(d, r"plugin VERSIONED generation %d \(\S+\) unloaded"
                 % v1["generation"])
        wait_for(lambda: read(self.fini) == "fini v1\n", what="v1 fini")
        doc = describe(d)
        self.assertIsNone(entry(doc, "retiring"), doc)
        self.assertEqual(entry(doc, "plugins")["generation"],
                         v2["generation"])
        self.assertFalse(os.path.exists(v1["copy"]))
        self.assertEqual(os.listdir(copies),
                         [os.path.basename(v2["copy"])])

        # the safe way: temporary name in the same directory, rename,
        # SIGHUP; the idle v2 is unloaded by the reload itself
        tmp = os.path.join(c.plugin_dir, ".versioned_v1.so.new")
        shutil.copyfile(os.path.join(TEST_PLUGINS, "versioned_v1.so"), tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, self.so)
        d.send_signal(signal.SIGHUP)
        wait_for(lambda: entry(describe(d), "plugins")["generation"]
                 > v2["generation"], what="generation 3")
        v3 = entry(describe(d), "plugins")
        self.assertEqual(v3["version"], "v1")
        wait_for(lambda: read(self.fini) == "fini v1\nfini v2\n",
                 what="v2 fini")
        jid = run_ok(d, "VERSIONED")
        wait_job_line(d, jid, "VERSIONED v1 done")
        self.assertEqual(os.listdir(copies),
                         [os.path.basename(v3["copy"])])

    def test_copies_of_a_dead_daemon_are_removed(self):
        c = self.cluster()
        d = c.start()
        copy = entry(describe(d), "plugins")["copy"]
        c.kill(d)            # no unload: its copy stays behind
        self.assertTrue(os.path.exists(copy))
        d = c.start()
        wait_log(d, r"removed 1 plugin copy left by an earlier run")
        self.assertFalse(os.path.exists(copy))
        run_ok(d, "VERSIONED")

    def test_writable_file_and_dir_are_refused(self):
        c = self.cluster()
        os.chmod(self.so, 0o775)
        d = c.start()
        doc = describe(d)
        self.assertIsNone(entry(doc, "plugins"))
        real = os.path.realpath(self.so)
        why = entry(doc, "refused")["reason"]
        self.assertIn("%s is group-writable (mode 0775)" % real, why)
        self.assertIn("fix: chmod go-w %s" % real, why)
        lines = [l for l in d.log().splitlines()
                 if "plugin VERSIONED (file versioned_v1.so) refused" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("group-writable", lines[0])
        self.assertIn("fix: chmod go-w", lines[0])

        # fixed, then reloaded: loaded
        os.chmod(self.so, 0o755)
        st, _, doc = d.json("POST", "/api/v1/plugins/reload")
        self.assertEqual(st, 200, doc)
        self.assertEqual(entry(doc, "plugins")["version"], "v1")
        self.assertEqual(doc["refused"], [])

        # a world-writable plugin_dir: refused, the loaded copy serves on
        os.chmod(c.plugin_dir, 0o777)
        try:
            st, _, doc = d.json("POST", "/api/v1/plugins/reload")
        finally:
            os.chmod(c.plugin_dir, 0o755)
        self.assertEqual(st, 200, doc)
        why = entry(doc, "refused")["reason"]
        self.assertIn("plugin_dir %s is world-writable (mode 0777)"
                      % os.path.realpath(c.plugin_dir), why)
        self.assertIn("keeps serving VERSIONED", why)
        self.assertEqual(entry(doc, "plugins")["version"], "v1")
        run_ok(d, "VERSIONED")
        self.assertTrue(re.search(r"plugin_dir \S+ is world-writable",
                                  d.log()))


if __name__ == "__main__":
    unittest.main()
