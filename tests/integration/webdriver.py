"""A small W3C WebDriver client (stdlib only) driving Debian's chromium
headless through chromedriver, for the dashboard's browser tests
(test_ui.py).

chromedriver is started on port 0 (it prints the port it bound) in its own
process group, which stop() ends with the browser. Nothing is skipped: when
chromedriver or chromium cannot start, Browser() raises AssertionError.

Environment:
  BERTH_CHROMEDRIVER  chromedriver binary (default: chromedriver on PATH)
  BERTH_CHROMIUM      browser binary (default: /usr/bin/chromium, else
                      chromium on PATH)
"""
import base64
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriverError(AssertionError):
    def __init__(self, status, error, message):
        super().__init__("webdriver %s: %s: %s" % (status, error, message))
        self.error = error


def _binary(env, default, name):
    v = os.environ.get(env)
    if v:
        return v
    if default and os.path.exists(default):
        return default
    found = shutil.which(name)
    if not found:
        raise AssertionError("%s not found (install Debian's chromium and "
                             "chromium-driver, or set %s)" % (name, env))
    return found


class Element:
    def __init__(self, browser, ref):
        self.b = browser
        self.ref = ref

    def _path(self, tail=""):
        return "/element/%s%s" % (self.ref, tail)

    def click(self):
        self.b.cmd("POST", self._path("/click"), {})
        return self

    def clear(self):
        self.b.cmd("POST", self._path("/clear"), {})
        return self

    def type(self, text):
        self.b.cmd("POST", self._path("/value"), {"text": text})
        return self

    @property
    def text(self):
        return self.b.cmd("GET", self._path("/text"))

    def prop(self, name):
        return self.b.cmd("GET", self._path("/property/" + name))

    def displayed(self):
        return self.b.cmd("GET", self._path("/displayed"))


class Browser:
    """One headless chromium session."""

    def __init__(self, width=1280, height=1100):
        self.tmp = tempfile.mkdtemp(prefix="berth-ui-")
        self.driver = None
        self.session = None
        driver = _binary("BERTH_CHROMEDRIVER", None, "chromedriver")
        chromium = _binary("BERTH_CHROMIUM", "/usr/bin/chromium", "chromium")
        self.driver_log = os.path.join(self.tmp, "chromedriver.log")
        try:
            self.driver = subprocess.Popen(
                [driver, "--port=0", "--log-path=" + self.driver_log],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
        except OSError as e:
            self._cleanup()
            raise AssertionError("cannot start chromedriver: %s" % e)
        self.port = self._read_port()
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--no-default-browser-check",
                         "--disable-extensions", "--disable-sync",
                         "--disable-background-networking",
                         "--password-store=basic",
                         "--window-size=%d,%d" % (width, height),
                         "--user-data-dir=" +
                         os.path.join(self.tmp, "profile")],
            },
            "timeouts": {"implicit": 0, "pageLoad": 30000,
                         "script": 30000},
        }}}
        try:
            v = self._http("POST", "/session", caps, timeout=90)
        except Exception as e:
            log = self.driver_log_text()[-3000:]
            self.stop()
            raise AssertionError("chromium did not start: %s\n%s" % (e, log))
        self.session = v["sessionId"]

    def _read_port(self):
        deadline = time.monotonic() + 30
        buf = b""
        while time.monotonic() < deadline:
            if self.driver.poll() is not None:
                break
            r, _, _ = select.select([self.driver.stdout], [], [], 0.2)
            if not r:
                continue
            chunk = os.read(self.driver.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            m = re.search(rb"started successfully on port (\d+)", buf)
            if m:
                return int(m.group(1))
        out = buf.decode(errors="replace")
        self.stop()
        raise AssertionError("chromedriver did not start:\n" + out)

    def driver_log_text(self):
        try:
            with open(self.driver_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # --- the protocol ------------------------------------------------------

    def _http(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.port, path), data=data,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                doc = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                v = json.loads(raw).get("value", {})
            except ValueError:
                v = {"error": "http %d" % e.code,
                     "message": raw.decode(errors="replace")}
            raise WebDriverError(e.code, v.get("error"), v.get("message"))
        return doc.get("value")

    def cmd(self, method, path, body=None, timeout=60):
        return self._http(method, "/session/%s%s" % (self.session, path),
                          body, timeout)

    # --- navigation and elements ------------------------------------------

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    @property
    def url(self):
        return self.cmd("GET", "/url")

    def find(self, css):
        """The first element matching css, or None."""
        v = self.cmd("POST", "/elements", {"using": "css selector",
                                           "value": css})
        return Element(self, v[0][ELEMENT]) if v else None

    def find_all(self, css):
        v = self.cmd("POST", "/elements", {"using": "css selector",
                                           "value": css})
        return [Element(self, e[ELEMENT]) for e in v]

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync",
                        {"script": script, "args": list(args)})

    def wait(self, pred, timeout=20, step=0.1, what="condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                v = pred()
            except WebDriverError as e:
                if e.error not in ("stale element reference",
                                   "no such element"):
                    raise
                v, last = None, e
            if v:
                return v
            time.sleep(step)
        raise AssertionError("timed out waiting for %s (%s)" % (what, last))

    def wait_find(self, css, timeout=20):
        """Waits for an element matching css to be displayed."""
        def ready():
            el = self.find(css)
            return el if el and el.displayed() else None
        return self.wait(ready, timeout, what="element %r" % css)

    def text_of(self, css):
        """textContent of the first element matching css ("" if none):
        the text as the DOM holds it, before CSS (text-transform) and
        without layout line breaks."""
        return self.js("var e = document.querySelector(arguments[0]);"
                       "return e ? e.textContent : ''", css)

    def wait_text(self, css, text, timeout=20):
        """Waits for text in the textContent of the first element matching
        css; returns that textContent."""
        def has():
            t = self.text_of(css)
            return t if text in t else None
        return self.wait(has, timeout,
                         what="%r in %r" % (text, css))

    def screenshot(self, path):
        png = base64.b64decode(self.cmd("GET", "/screenshot"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(png)
        return path

    # --- the end ------------------------------------------------------------

    def _cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def stop(self):
        if self.session:
            try:
                self._http("DELETE", "/session/" + self.session, timeout=20)
            except Exception:  # noqa: BLE001 - the group is killed below
                pass
            self.session = None
        if self.driver and self.driver.poll() is None:
            # chromedriver and the browser it started share its group
            try:
                os.killpg(self.driver.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.driver.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.driver.pid, signal.SIGKILL)
                self.driver.wait()
        if self.driver and self.driver.stdout:
            self.driver.stdout.close()
        self._cleanup()
