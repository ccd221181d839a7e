"""The Debian package on this machine: builds the .deb from the build tree
with CPack (what `cmake --build build --target package` runs), installs it
with `dpkg -i`, checks what it installed, then removes and purges it:

  - the package lists berthd, the bundled plugins, the SDK, the
    configuration (conffiles), the systemd unit and the man page;
  - postinst created the system user `berth` and /var/lib/berth and
    /var/log/berth (owned by it, 0750);
  - `/usr/sbin/berthd --check-config -c /etc/berth/berth.yml` is valid,
    run as root and as the user berth, with every bundled plugin loaded
    from the installed plugin directory; `berthctl --help` works when the
    package has a berthctl; `systemd-analyze verify` accepts the unit when
    systemd-analyze is there;
  - berthd runs as berth.service would run it (user berth, data in
    /var/lib/berth, the installed configuration with its embedded
    redis-server) and serves every bundled job type;
  - `dpkg -r` removes every file but the conffiles and keeps the data;
    `dpkg --purge` leaves nothing of the package's paths, /etc/berth or the
    data directories.

It changes the machine, so it runs as root where dpkg works (CI: Debian 12
as root) and exits 77 (skipped) otherwise, or when a berth package, the
user's data (/var/lib/berth) or /etc/berth are already there. The user
berth is deleted again when this test created it.

Environment (tests/install/install.cmake): BERTH_BUILD, BERTH_SOURCE."""
import glob
import http.client
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BERTH_BUILD", "build")
SKIP = 77
PKG = "berth"
CONFIG = "/etc/berth/berth.yml"
# exec as the user berth (no process in between: signals reach berthd)
AS_BERTH = ["setpriv", "--reuid=berth", "--regid=berth", "--init-groups",
            "--"]


def run(cmd, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(cmd),
                                                    p.returncode, p.stdout,
                                                    p.stderr))
    return p


def skip(why):
    print("skipped: " + why)
    sys.exit(SKIP)


def installed():
    p = run(["dpkg-query", "-W", "-f=${Status}", PKG], check=False)
    return p.returncode == 0 and "installed" in p.stdout.split()


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def check(cond, what, detail=""):
    if not cond:
        raise AssertionError(what + ("\n" + detail if detail else ""))
    print("ok: " + what)


def check_config(prefix_cmd):
    env = {k: v for k, v in os.environ.items()
           if k != "LOG_LEVEL" and not k.startswith("BERTH_")
           and not k.startswith("JOB_SERVICE_")}
    p = run(prefix_cmd + ["/usr/sbin/berthd", "--check-config", "-c",
                          CONFIG], check=False, env=env, cwd="/")
    check(p.returncode == 0 and "is valid" in p.stdout and p.stderr == "",
          "berthd --check-config as %s is valid, quiet" % (
              "berth" if prefix_cmd else "root"),
          "exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


def serve_as_berth(plugin_dir):
    """berthd as berth.service runs it: user berth, BERTH_DATA_DIR
    /var/lib/berth, the installed configuration as it is (embedded
    redis-server); only the port (0) and the address (loopback) come from
    the environment. Every bundled job type is served."""
    if not shutil.which("redis-server"):
        print("note: no redis-server, the installed daemon is not started")
        return
    port_file = "/var/lib/berth/port"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "BERTH_DATA_DIR": "/var/lib/berth", "JOB_SERVICE_PORT": "0",
           "BERTH_LISTEN_ADDRESS": "127.0.0.1"}
    proc = subprocess.Popen(
        AS_BERTH + ["/usr/sbin/berthd", "-c", CONFIG, "--port-file",
                    port_file], env=env, cwd="/",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("berthd did not start:\n%s"
                                     % proc.communicate(timeout=10)[0])
            time.sleep(0.1)
        with open(port_file) as f:
            port = int(f.read())
        with open("/var/lib/berth/core_secret") as f:
            secret = f.read().strip()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/api/v1/plugins",
                  headers={"Authorization": "Harbor-Secret " + secret})
        r = c.getresponse()
        doc = json.loads(r.read())
        c.close()
        check(r.status == 200 and not doc["refused"] and
              {os.path.dirname(p["file"]) for p in doc["plugins"]}
              == {plugin_dir} and
              "DEMO" in {p["name"] for p in doc["plugins"]},
              "berthd as berth serves %d job types from %s"
              % (len(doc["plugins"]), plugin_dir), json.dumps(doc))
        st = os.stat("/var/lib/berth/core_secret")
        check(st.st_uid == pwd.getpwnam("berth").pw_uid and
              stat.S_IMODE(st.st_mode) == 0o600,
              "the generated secret belongs to berth, mode 0600")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    check(proc.returncode == 0, "berthd as berth stopped cleanly",
          "exit %s\n%s" % (proc.returncode, out[-3000:]))


def main():
    if os.geteuid() != 0:
        skip("needs root (dpkg -i)")
    for tool in ("dpkg", "dpkg-deb", "dpkg-query", "cpack", "setpriv"):
        if not shutil.which(tool):
            skip("no " + tool)
    if installed():
        skip("a %s package is installed already" % PKG)
    for path in ("/etc/berth", "/var/lib/berth", "/var/log/berth"):
        if os.path.exists(path):
            skip("%s exists already" % path)
    user_was_there = user_exists("berth")

    tmp = tempfile.mkdtemp(prefix="berth-deb-")
    files = []
    try:
        run(["cpack", "-G", "DEB", "--config",
             os.path.join(BUILD, "CPackConfig.cmake"), "-B", tmp])
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        check(len(debs) == 1, "cpack made one .deb: %s" % debs)
        deb = debs[0]
        run(["dpkg", "-i", deb])
        check(installed(), "dpkg -i %s" % os.path.basename(deb))

        files = [f for f in run(["dpkg-query", "-L", PKG]).stdout.split("\n")
                 if f and os.path.isfile(f)]
        for want in ("/usr/sbin/berthd", "/usr/sbin/berth-plugin-runner",
                     "/etc/berth/berth.yml", "/etc/berth/plugins.yml",
                     "/usr/lib/systemd/system/berthd.service",
                     "/usr/share/man/man8/berthd.8",
                     "/usr/include/berth/plugin.h",
                     "/usr/include/berth/http.h"):
            check(want in files, "the package has " + want)
        for suffix in ("/libberth_http.a", "/cmake/Berth/BerthConfig.cmake",
                       "/berth/plugins/demo.so"):
            check(any(f.endswith(suffix) for f in files),
                  "the package has .../" + suffix.lstrip("/"))
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
        check("/etc/berth/berth.yml" in conffiles and
              "/etc/berth/plugins.yml" in conffiles,
              "the configuration files are conffiles")

        # postinst
        check(user_exists("berth"), "postinst created the user berth")
        uid = pwd.getpwnam("berth").pw_uid
        for d in ("/var/lib/berth", "/var/log/berth"):
            st = os.stat(d)
            check(st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o750,
                  "%s belongs to berth, mode 0750" % d)

        # the installed daemon, as root and as the service's user
        out = check_config([])
        check_config(AS_BERTH)
        plugin_dirs = {os.path.dirname(f) for f in files
                       if f.endswith(".so") and "/berth/plugins/" in f}
        check(len(plugin_dirs) == 1, "one plugin directory: %s"
              % plugin_dirs)
        plugin_dir = plugin_dirs.pop()
        for so in os.listdir(os.path.join(BUILD, "plugins")):
            if so.endswith(".so"):
                check(os.path.join(plugin_dir, so) in files,
                      "bundled plugin %s is packaged" % so)
        check(("(%s/" % plugin_dir) in out and "loaded DEMO" in out,
              "plugins are loaded from %s" % plugin_dir)

        serve_as_berth(plugin_dir)

        ctl = [f for f in files if os.path.basename(f) == "berthctl"]
        if ctl:
            p = run([ctl[0], "--help"], check=False)
            check(p.returncode == 0 and p.stdout, "%s --help" % ctl[0],
                  "exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
        else:
            print("note: the package has no berthctl (not built yet)")

        if shutil.which("systemd-analyze"):
            p = run(["systemd-analyze", "verify",
                     "/usr/lib/systemd/system/berthd.service"], check=False)
            check(p.returncode == 0, "systemd-analyze verify berthd.service",
                  "exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))

        # remove: files go, conffiles and data stay
        run(["dpkg", "-r", PKG])
        left = [f for f in files if os.path.exists(f)
                and not f.startswith("/etc/berth/")]
        check(left == [], "dpkg -r removed every file: left %s" % left)
        check(os.path.exists(CONFIG), "dpkg -r keeps the conffiles")
        check(os.path.exists("/var/lib/berth/core_secret"),
              "dpkg -r keeps /var/lib/berth (the generated secret)")

        # purge: nothing is left
        run(["dpkg", "--purge", PKG])
        check(not installed(), "dpkg --purge: the package is gone")
        left = [f for f in files if os.path.lexists(f)]
        left += [d for d in ("/etc/berth", "/var/lib/berth",
                             "/var/log/berth", "/usr/lib/berth",
                             "/usr/include/berth", "/usr/lib/cmake/Berth")
                 if os.path.lexists(d)]
        check(left == [], "dpkg --purge left nothing: %s" % left)
    finally:
        if installed():
            run(["dpkg", "--purge", PKG], check=False)
        if not user_was_there and user_exists("berth"):
            run(["userdel", "berth"], check=False)
            run(["groupdel", "berth"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    print("install_deb: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
