#!/usr/bin/env python3
"""REPLICATION throughput against `skopeo copy` (not part of ctest).

  tests/bench/replication.py [--build build] [--size-mb 200] [--layers 5]
                             [--reps 3] [--parallel 4] [--gzip|--no-gzip]
                             [--max-rss-mb 64] [--isolation process]

Builds one image of --layers random layers (--size-mb in all; gzip layers
by default, as real images are, so that skopeo copies them untouched),
pushes it once to a source docker-registry, then copies it to a
destination docker-registry, interleaving per repetition:
  berth   a REPLICATION job (berthd from --build, one job, the plugin with
          parallel_blobs from --parallel, each value a separate daemon;
          isolation process with max_rss_mb as the manifest entry says,
          so a run that held layers in memory would be killed)
  skopeo  skopeo copy --preserve-digests docker://src/... docker://dst/...
Before every copy the destination's storage is wiped and the registry
restarted, so each copy moves every byte. Times are wall clock: submit to
Success for berth (the status polled every 20 ms), process start to exit
for skopeo. Prints every run, the median MB/s of each mode and the ratio
berth / skopeo (>= 1: berth at least as fast). Registries, berthd and
skopeo share the machine's CPUs; numbers are indicative.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..",
                                                     "build"))
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parallel", default="4",
                    help="comma-separated parallel_blobs values")
    ap.add_argument("--gzip", dest="gzip", action="store_true", default=True)
    ap.add_argument("--no-gzip", dest="gzip", action="store_false")
    ap.add_argument("--max-rss-mb", type=int, default=64)
    ap.add_argument("--isolation", default="process",
                    choices=["thread", "process"])
    ap.add_argument("--chunk", action="store_true",
                    help="copy_by_chunk for the berth runs")
    return ap.parse_args()


A = parse()
BUILD = os.path.abspath(A.build)
os.environ["BERTHD"] = os.path.join(BUILD, "berthd")
os.environ["BERTH_PLUGINS"] = os.path.join(BUILD, "plugins")
os.environ["BERTH_TEST_PLUGINS"] = os.path.join(BUILD, "tests", "plugins")

from harness import Cluster, job, submit_ok  # noqa: E402
from registry_fixture import (Registry, blobs_on_disk,  # noqa: E402
                              build_image, manifest_digest, push)


def entry(parallel):
    return """  - name: REPLICATION
    file: replication.so
    isolation: %s
    max_rss_mb: %d
    settings:
      parallel_blobs: %d
""" % (A.isolation, A.max_rss_mb, parallel)


def wipe(reg):
    reg.stop()
    shutil.rmtree(reg.root, ignore_errors=True)
    os.makedirs(reg.root)
    reg.start(keep_port=True)


def berth_copy(d, src, dst, size):
    res = '{"type":"image","metadata":{"repository":{"name":"%s"},' \
          '"artifacts":[{"type":"image","tags":["v1"]}]},' \
          '"registry":{"url":"%s","insecure":true}}'
    p = {"src_resource": res % ("bench/img", src.url),
         "dst_resource": res % ("bench/copy", dst.url),
         "copy_by_chunk": A.chunk}
    t0 = time.monotonic()
    jid = submit_ok(d, "REPLICATION", p)
    while True:
        st = job(d, jid)["status"]
        if st in ("Success", "Error", "Stopped"):
            break
        time.sleep(0.02)
    dt = time.monotonic() - t0
    if st != "Success":
        tail = [l for l in d.log().splitlines() if jid in l][-10:]
        raise SystemExit("berth run %s: %s\n%s" % (jid, st, "\n".join(tail)))
    return dt


def skopeo_copy(src, dst):
    t0 = time.monotonic()
    subprocess.run(["skopeo", "--insecure-policy", "copy",
                    "--preserve-digests", "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    "docker://%s/bench/img:v1" % src.host,
                    "docker://%s/bench/skopeo:v1" % dst.host],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def main():
    tmp = tempfile.mkdtemp(prefix="berth-bench-repl-")
    src = dst = None
    rows = []
    try:
        src = Registry(tmp, name="src")
        dst = Registry(tmp, name="dst")
        per = A.size_mb * 1024 * 1024 // A.layers
        t0 = time.monotonic()
        img = build_image(os.path.join(tmp, "layout"),
                          layers=[per] * A.layers, gzip=A.gzip, tag="v1")
        push(img, src, "bench/img", "v1")
        mb = img.size / 1e6
        print("image: %d layers, %.1f MB (%s), built and pushed in %.1f s"
              % (A.layers, mb, "gzip" if A.gzip else "tar",
                 time.monotonic() - t0))
        pars = [int(x) for x in A.parallel.split(",")]
        clusters = {}
        for p in pars:
            c = Cluster(entry(p))
            clusters[p] = (c, c.start())
        try:
            for rep in range(A.reps):
                modes = ["skopeo"] + ["berth/p%d" % p for p in pars]
                if rep % 2:
                    modes.reverse()
                for m in modes:
                    wipe(dst)
                    if m == "skopeo":
                        dt = skopeo_copy(src, dst)
                        ref = ("bench/skopeo", "v1")
                    else:
                        d = clusters[int(m.split("/p")[1])][1]
                        dt = berth_copy(d, src, dst, img.size)
                        ref = ("bench/copy", "v1")
                    assert manifest_digest(dst, *ref) == img.digest
                    assert set(img.blobs) <= blobs_on_disk(dst)
                    rows.append((rep, m, dt, mb / dt))
                    print("rep %d  %-10s %6.2f s  %7.1f MB/s" %
                          (rep, m, dt, mb / dt), flush=True)
        finally:
            for c, _ in clusters.values():
                c.close()
    finally:
        for r in (src, dst):
            if r:
                r.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print("\n%-10s %8s %10s %10s" % ("mode", "runs", "median s",
                                      "median MB/s"))
    med = {}
    for m in sorted({r[1] for r in rows}):
        ts = [r[2] for r in rows if r[1] == m]
        med[m] = statistics.median(ts)
        print("%-10s %8d %10.2f %10.1f" % (m, len(ts), med[m],
                                            mb / med[m]))
    for m in med:
        if m != "skopeo":
            print("ratio %s / skopeo (MB/s): %.2f" %
                  (m, med["skopeo"] / med[m]))


if __name__ == "__main__":
    main()
