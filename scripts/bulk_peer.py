"""The search workload's ceiling: a direct `_bulk` of the same documents rowbus indexes.

Usage: bulk_peer.py URL INDEX ROWS.tsv THREADS MAX_BYTES
Reads the rows (id, a, b, c, d as tab-separated text), builds the bulk bodies beforehand (at most
MAX_BYTES each, documents partitioned by id over THREADS like the sink's workers), then sends them
from THREADS threads over keep-alive connections and prints the seconds the sending took.
"""
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlparse


def bodies(rows, index, threads, max_bytes):
    parts = [[] for _ in range(threads)]
    for line in rows:
        id_, a, b, c, d = line.rstrip("\n").split("\t")
        action = json.dumps({"index": {"_index": index, "_id": id_}}, separators=(",", ":"))
        doc = json.dumps(
            {"id": int(id_), "a": int(a), "b": b, "c": c, "d": d.replace(" ", "T")[:23]},
            separators=(",", ":"),
        )
        parts[int(id_) % threads].append((action + "\n" + doc + "\n").encode())
    out = []
    for part in parts:
        chunks, current = [], bytearray()
        for item in part:
            if current and len(current) + len(item) > max_bytes:
                chunks.append(bytes(current))
                current = bytearray()
            current += item
        if current:
            chunks.append(bytes(current))
        out.append(chunks)
    return out


def send(url, chunks, failures):
    conn = http.client.HTTPConnection(url.hostname, url.port)
    for body in chunks:
        conn.request("POST", "/_bulk", body, {"content-type": "application/x-ndjson"})
        reply = conn.getresponse().read()
        if json.loads(reply).get("errors"):
            failures.append(reply[:300])


def main():
    url, index, path, threads, max_bytes = sys.argv[1:6]
    url = urlparse(url)
    with open(path) as f:
        parts = bodies(f, index, int(threads), int(max_bytes))
    failures = []
    workers = [threading.Thread(target=send, args=(url, p, failures)) for p in parts]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - start
    if failures:
        sys.exit(f"bulk errors: {failures[0]!r}")
    print(elapsed)


main()
