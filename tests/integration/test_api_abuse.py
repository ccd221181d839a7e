"""The REST API survives hostile clients (issue 11): deep JSON nesting,
broken body framing, idle and slow connections, and an open route that must
not tell internal details. Raw sockets where http.client would fix the
request up. Attack connections come from 127.0.0.2 (all of 127/8 is
loopback), the well-behaved client from 127.0.0.1, so the per-address
connection cap applies to the attacker only."""
import json
import os
import socket
import threading
import time
import unittest

from harness import (NS, SECRET, SOURCE, Cluster, demo_entry,
                     harbor_config, wait_for)

AUTH = "Authorization: Harbor-Secret %s\r\n" % SECRET
ATTACKER = "127.0.0.2"
CORPUS = os.path.join(SOURCE, "tests", "fuzz", "corpus", "submit")


def raw(port, data, src=None, timeout=10):
    """Sends data on a new connection; the whole answer until the server
    closes (or timeout), and whether it closed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if src:
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    out = b""
    closed = False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def parse(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = body
    return status, hdrs, doc


def post(extra_headers, body):
    return (b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n" +
            AUTH.encode() + extra_headers + b"\r\n" + body)


JOB = (b'{"job":{"name":"DEMO","metadata":{"kind":"Generic"},'
       b'"parameters":{"image":"demo-1"}}}')

# (name, request bytes, expected code in the error body). Each is also a
# file of the fuzz corpus (tests/fuzz/corpus/submit/framing-<name>).
FRAMING = [
    ("dup-cl-same", post(b"Content-Length: 3\r\nContent-Length: 3\r\n",
                         b"abc"), 10000),
    ("dup-cl-conflict", post(b"Content-Length: 3\r\nContent-Length: 5\r\n",
                             b"abcde"), 10000),
    ("cl-garbage", post(b"Content-Length: abc\r\n", b"abc"), 10000),
    ("cl-negative", post(b"Content-Length: -5\r\n", b"abc"), 10000),
    ("cl-empty", post(b"Content-Length: \r\n", b"abc"), 10000),
    ("cl-trailing", post(b"Content-Length: 3x\r\n", b"abc"), 10000),
    ("cl-plus", post(b"Content-Length: +3\r\n", b"abc"), 10000),
    ("cl-two-numbers", post(b"Content-Length: 3 4\r\n", b"abc"), 10000),
    ("cl-and-te", post(b"Content-Length: 3\r\n"
                       b"Transfer-Encoding: chunked\r\n",
                       b"3\r\nabc\r\n0\r\n\r\n"), 10000),
    ("te-twice", post(b"Transfer-Encoding: chunked\r\n"
                      b"Transfer-Encoding: chunked\r\n",
                      b"3\r\nabc\r\n0\r\n\r\n"), 10000),
    ("te-gzip", post(b"Transfer-Encoding: gzip\r\n", b"abc"), 10013),
    ("chunk-bad-hex", post(b"Transfer-Encoding: chunked\r\n",
                           b"zz\r\nabc\r\n0\r\n\r\n"), 10000),
    ("chunk-no-crlf", post(b"Transfer-Encoding: chunked\r\n",
                           b"3\r\nabcXX0\r\n\r\n"), 10000),
    ("chunk-huge-size", post(b"Transfer-Encoding: chunked\r\n",
                             b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
     10000),
    # these two wait for berth.api_request_timeout_ms (1 s here)
    ("chunk-truncated", post(b"Transfer-Encoding: chunked\r\n",
                             b"10\r\nabc"), 10000),
    ("chunk-no-end", post(b"Transfer-Encoding: chunked\r\n",
                          b"3\r\nabc\r\n"), 10000),
    ("cl-truncated", post(b"Content-Length: 100\r\n", JOB[:20]), 10000),
    # framing is checked for every method, before authentication
    ("get-dup-cl", b"GET /api/v1/jobs/x HTTP/1.1\r\nHost: x\r\n" +
     AUTH.encode() + b"Content-Length: 3\r\nContent-Length: 5\r\n\r\n"
     b"abcde", 10000),
    ("noauth-dup-cl", b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 10000),
]


def nested(depth):
    """A submit body whose parameters nest to 'depth' levels in total."""
    inner = depth - 3  # {"job": {"parameters": {"n": <inner>}}}
    return (b'{"job":{"name":"DEMO","metadata":{"kind":"Generic"},'
            b'"parameters":{"image":"demo-1","n":' +
            b"[" * inner + b"]" * inner + b"}}}")


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(demo_entry(), config=lambda s, d, m: harbor_config(
            s, d, m, "  api_request_timeout_ms: 1000\n"
                     "  api_threads: 16\n"
                     "  api_max_client_connections: 8\n"))
        cls.d = cls.c.start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def alive(self):
        st, _, doc = self.d.json("GET", "/api/v1/stats", auth=False)
        self.assertEqual(st, 200, doc)

    def test_deep_nesting_is_400_before_parsing(self):
        for depth in (65, 800, 30000):
            body = nested(depth)
            out, _ = raw(self.d.port, post(
                b"Content-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n" % len(body), body))
            st, _, doc = parse(out)
            self.assertEqual(st, 400, (depth, out[:300]))
            self.assertEqual(doc["code"], 10013)
            self.assertEqual(doc["message"], "bad request")
            self.assertIn("deeper than 64", doc["details"])
        # a string full of brackets is not nesting
        body = (b'{"job":{"name":"DEMO","metadata":{"kind":"Generic"},'
                b'"parameters":{"image":"demo-1","s":"' + b"[{" * 500 + b'\\"]"}}}')
        st, _, doc = self.d.json("POST", "/api/v1/jobs", body)
        self.assertEqual(st, 202, doc)
        # 64 levels pass the check (and the job is accepted)
        st, _, doc = self.d.json("POST", "/api/v1/jobs", nested(64))
        self.assertEqual(st, 202, doc)
        self.alive()

    def test_deep_data_read_back_from_redis(self):
        # stats written by another instance (or by hand) with parameters
        # nested 5,000 deep: reading them back on an API thread must not
        # overflow its stack
        r = self.c.client()
        jid = "ab" * 12
        deep = "[" * 5000 + "]" * 5000
        r("HSET", NS + ":job_stats:" + jid, "id", jid, "name", "DEMO",
          "kind", "Generic", "status", "Success", "revision", "1",
          "update_time", "1", "run_at", "1", "parameters", deep)
        st, _, _ = self.d.json("GET", "/api/v1/jobs/" + jid)
        self.assertIn(st, (200, 500))
        self.alive()
        r("DEL", NS + ":job_stats:" + jid)
        r.close()

    def test_framing_errors_are_400_and_close(self):
        for name, req, code in FRAMING:
            t = time.monotonic()
            out, closed = raw(self.d.port, req)
            took = time.monotonic() - t
            st, hdrs, doc = parse(out)
            self.assertEqual(st, 400, (name, out[:300]))
            self.assertIsInstance(doc, dict, (name, out[:300]))
            self.assertEqual(doc["code"], code, (name, doc))
            self.assertTrue(closed, name)
            self.assertLess(took, 5, name)
        self.alive()

    def test_valid_chunked_body_still_works(self):
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p)
                          for p in (JOB[:10], JOB[10:])) + b"0\r\n\r\n"
        out, _ = raw(self.d.port, post(
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n",
            chunks))
        st, _, doc = parse(out)
        self.assertEqual(st, 202, out[:300])
        self.assertEqual(doc["job"]["name"], "DEMO")

    def test_connection_cap_per_address(self):
        # 8 idle connections from the attacker take its whole allowance;
        # the 9th is refused at once; another address is not affected
        held = []
        try:
            for _ in range(8):
                s = socket.socket()
                s.bind((ATTACKER, 0))
                s.connect(("127.0.0.1", self.d.port))
                held.append(s)

            def refused():
                out, closed = raw(self.d.port,
                                  b"GET /api/v1/stats HTTP/1.1\r\n\r\n",
                                  src=ATTACKER, timeout=5)
                return closed and (out == b"" or b" 503 " in out[:20])
            wait_for(refused, timeout=5, what="9th connection refused")
            out, _ = raw(self.d.port, b"GET /api/v1/stats HTTP/1.1\r\n"
                         b"Connection: close\r\n\r\n", src=ATTACKER)
            if out:
                st, _, doc = parse(out)
                self.assertEqual(st, 503)
                self.assertEqual(doc["code"], 10018)
            self.alive()
        finally:
            for s in held:
                s.close()

        def admitted():
            out, _ = raw(self.d.port, b"GET /api/v1/stats HTTP/1.1\r\n"
                         b"Connection: close\r\n\r\n", src=ATTACKER)
            return out.startswith(b"HTTP/1.1 200")
        wait_for(admitted, timeout=5, what="attacker address admitted again")


class Slowloris(unittest.TestCase):
    """200 idle and 200 slow-header connections (the defaults of the
    connection cap and thread count) while a client keeps calling."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(demo_entry(), config=lambda s, d, m: harbor_config(
            s, d, m, "  api_request_timeout_ms: 3000\n"))
        cls.d = cls.c.start()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_idle_and_slow_connections_do_not_starve_the_api(self):
        stop = threading.Event()
        socks = []
        lock = threading.Lock()

        def opener(slow):
            for _ in range(200):
                if stop.is_set():
                    return
                s = socket.socket()
                s.settimeout(5)
                try:
                    s.bind((ATTACKER, 0))
                    s.connect(("127.0.0.1", self.d.port))
                    if slow:
                        s.send(b"GET /api/v1/stats HTTP/1.1\r\n")
                except OSError:
                    s.close()
                    continue
                with lock:
                    socks.append((s, slow))

        def trickler():
            # one more header byte per second on every slow connection
            while not stop.wait(1.0):
                with lock:
                    cur = list(socks)
                for s, slow in cur:
                    if slow:
                        try:
                            s.send(b"X")
                        except OSError:
                            pass

        threads = [threading.Thread(target=opener, args=(False,)),
                   threading.Thread(target=opener, args=(True,)),
                   threading.Thread(target=trickler)]
        for t in threads:
            t.start()
        lat = []
        try:
            end = time.monotonic() + 8
            while time.monotonic() < end:
                t = time.monotonic()
                st, _, doc = self.d.json("GET", "/api/v1/jobs/nope")
                lat.append(time.monotonic() - t)
                self.assertEqual(st, 404, doc)
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join()
            with lock:
                n_open = len(socks)
                for s, _ in socks:
                    s.close()
        print("\nslowloris: %d attack connections opened, %d calls, "
              "max latency %.3f s, mean %.3f s"
              % (n_open, len(lat), max(lat), sum(lat) / len(lat)))
        self.assertGreater(n_open, 300)
        self.assertLess(max(lat), 2.0)

        def recovered():
            out, _ = raw(self.d.port, b"GET /api/v1/stats HTTP/1.1\r\n"
                         b"Connection: close\r\n\r\n", src=ATTACKER)
            return out.startswith(b"HTTP/1.1 200")
        wait_for(recovered, timeout=10, what="attacker address served again")


class OpenRouteRedaction(unittest.TestCase):
    def test_stats_with_redis_down_hides_the_address(self):
        with Cluster(demo_entry()) as c:
            d = c.start()
            sock = c.redis.sock
            c.redis.stop()
            st, _, doc = d.json("GET", "/api/v1/stats", auth=False)
            self.assertEqual(st, 500)
            self.assertEqual(sorted(doc), ["code", "details", "message"])
            self.assertEqual(doc["code"], 10004)
            self.assertEqual(doc["message"],
                             "check stats of server failed with error")
            self.assertNotIn(sock, doc["details"])
            self.assertNotIn(os.path.basename(sock), doc["details"])
            self.assertNotIn("/", doc["details"])
            # the operator still finds the cause in the service log
            wait_for(lambda: sock in d.log(), timeout=5,
                     what="redis error in the log")
            c.redis.start()


if __name__ == "__main__":
    unittest.main()
