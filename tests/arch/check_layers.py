#!/usr/bin/env python3
"""Checks the layering rules of host/ (see host/README.md) over the sources.

Run from anywhere: check_layers.py [SOURCE_ROOT]. Prints every violation as
file:line: rule: text and exits 1 when there is one, 0 otherwise. It reads
#include lines and C string literals only; comments are ignored.

The rules:
  R1 only host/store/ includes <hiredis/...>;
  R2 the store's internal headers (those that include hiredis) are included
     only by host/store/ and the unit tests;
  R3 only host/store/ issues Redis commands (redis_command*, redis_pipeline,
     script_run*, hiredis' redis* calls);
  R4 Redis key names are spelled only in host/store/keys.c and keys.h (and
     in the Lua sources of host/store/scripts.c, which receive them as KEYS);
  R5 host/common/ is a leaf: it includes only common/ and logs/log.h;
  R6 host/store/ never includes api/, engine/, hooks/ or periodic/ headers,
     nor metrics/ beyond metrics/metrics.h (the counters every layer
     records into): it is below everything that calls it;
  R7 bundled plugins never include a host header: they see the SDK only
     (the <berth/...> headers of SDK_HEADERS: sdk/include/berth/ and the
     registry client's plugins/registry/include/berth/registry.h).
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
HOST = os.path.join(ROOT, "host")

# Fragments of key names as they appear in C string literals. A literal that
# contains one of these outside keys.c/keys.h spells a key by hand.
KEY_FRAGMENTS = [
    ":job_stats", "job_stats:", ":job_track", ":jobs:", "jobs:%",
    ":executions:", "executions:%", ":worker_pools", ":known_jobs",
    ":period:", "period:policies", "period:lock", ":scheduled", ":retry\"",
    ":dead\"", ":inprogress", ":lock_info", ":max_concurrency", ":paused",
    ":_schema_version", "hook_events", "hook_agents", ":berth:",
]
REDIS_CALL = re.compile(
    r"\b(redis_command(_argv)?|redis_pipeline\w*|script_run(_lens)?|"
    r"redisCommand\w*|redisAppend\w*|redisGetReply)\s*\(")
# The <berth/...> headers a plugin may include: the SDK's and the registry
# client's (Berth::registry, installed with the SDK).
SDK_HEADERS = {"berth/plugin.h", "berth/http.h", "berth/http_plugin.h",
               "berth/registry.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def strip_comments(text):
    """Blanks /* */ and // comments, keeping line numbers and strings."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sources(top):
    for d, _, files in os.walk(top):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.join(d, f)


def rel(p):
    return os.path.relpath(p, ROOT)


def subsystem(path):
    r = os.path.relpath(path, HOST)
    return r.split(os.sep)[0] if os.sep in r else ""


def self_test():
    """Builds a small tree that breaks every rule once and checks that each
    rule fires (a check that cannot fail proves nothing)."""
    import shutil
    import subprocess
    import tempfile
    tmp = tempfile.mkdtemp(prefix="berth-arch-")
    try:
        files = {
            "host/api/a.c": '#include <hiredis/hiredis.h>\n'
                            '#include "store/internal.h"\n'
                            'static void f(void) { redis_command(p, e, "GET", k, 0); }\n'
                            'static const char *k = "%s:job_stats:%s";\n',
            "host/store/internal.h": '#include <hiredis/hiredis.h>\n',
            "host/store/keys.c": 'static const char *k = "%s:job_stats:%s";\n',
            "host/store/q.c": '#include "hooks/hook.h"\n'
                              '/* "%s:jobs:%s" in a comment is fine */\n',
            "host/common/u.c": '#include "store/queue.h"\n',
            "plugins/x/x.c": '#include "engine/worker.h"\n',
            "plugins/y/y.c": '#include <berth/registry.h>\n'
                             '#include <berth/http_plugin.h>\n',
        }
        for rel_path, text in files.items():
            path = os.path.join(tmp, rel_path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        out = subprocess.run([sys.executable, __file__, tmp],
                             capture_output=True, text=True)
        want = ["R1", "R2", "R3", "R4", "R5", "R6", "R7"]
        missing = [r for r in want if r + " " not in out.stdout]
        extra = [l for l in out.stdout.splitlines()
                 if "keys.c" in l or "comment" in l or "y.c" in l]
        if out.returncode != 1 or missing or extra:
            print("self-test failed: rc=%d missing=%s unexpected=%s\n%s" %
                  (out.returncode, missing, extra, out.stdout))
            return 1
        print("self-test: every rule fires on a tree that breaks it")
        return 0
    finally:
        shutil.rmtree(tmp)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        return self_test()
    problems = []

    def bad(path, line, rule, text):
        problems.append("%s:%d: %s: %s" % (rel(path), line, rule,
                                           text.strip()[:100]))

    host_files = list(sources(HOST))
    # Store-internal headers: store headers that include hiredis.
    internal = set()
    for p in host_files:
        if subsystem(p) == "store" and p.endswith(".h"):
            with open(p, encoding="utf-8") as fh:
                if re.search(r"#\s*include\s*<hiredis/", fh.read()):
                    internal.add("store/" + os.path.basename(p))

    for p in host_files:
        sub = subsystem(p)
        with open(p, encoding="utf-8") as fh:
            text = strip_comments(fh.read())
        base = os.path.basename(p)
        for no, line in enumerate(text.split("\n"), 1):
            m = INCLUDE.match(line)
            if m:
                inc = m.group(1)
                if inc.startswith("hiredis/") and sub != "store":
                    bad(p, no, "R1 hiredis outside store/", line)
                if inc in internal and sub != "store":
                    bad(p, no, "R2 store-internal header", line)
                top = inc.split("/")[0] if "/" in inc else ""
                if sub == "common" and top not in ("", "common") and \
                        inc != "logs/log.h" and not line.lstrip().startswith("#include <"):
                    bad(p, no, "R5 common/ is a leaf", line)
                if sub == "store" and (top in ("api", "engine", "hooks",
                                               "periodic") or
                                       (top == "metrics" and
                                        inc != "metrics/metrics.h")):
                    bad(p, no, "R6 store/ includes an upper layer", line)
                continue
            if sub != "store" and REDIS_CALL.search(line):
                bad(p, no, "R3 Redis command outside store/", line)
            if base in ("keys.c", "keys.h") and sub == "store":
                continue
            if base == "scripts.c" and sub == "store":
                continue
            for s in STRING.findall(line):
                if any(f in s for f in KEY_FRAGMENTS):
                    bad(p, no, "R4 key name outside store/keys", line)
                    break

    for p in sources(os.path.join(ROOT, "plugins")):
        with open(p, encoding="utf-8") as fh:
            text = strip_comments(fh.read())
        for no, line in enumerate(text.split("\n"), 1):
            m = INCLUDE.match(line)
            if m and (m.group(1).split("/")[0] in (
                    "store", "engine", "hooks", "periodic", "config",
                    "plugins", "logs", "metrics", "common", "api") or
                      (m.group(1).startswith("berth/") and
                       m.group(1) not in SDK_HEADERS)):
                bad(p, no, "R7 plugin includes a host header", line)

    for line in problems:
        print(line)
    print("%d layering violation(s) in %d host files" %
          (len(problems), len(host_files)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
