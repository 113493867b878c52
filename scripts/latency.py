#!/usr/bin/env python3
"""Latency from commit to delivered at a steady rate, for scripts/bench.sh latency.

Writes RATE rows/s into lat.t (a DECIMAL column holding the send time) through one `mariadb`
client, in transactions of ROWS_PER_TXN rows, for SECONDS seconds. Two readers measure when each
row arrives: rowbus's file sink (OUT, tailed) and, as the peer, `mariadb-binlog` streaming the
binlog from the server as a replica and printing decoded rows. Prints one line per reader,
with the number of rows seen and p50/p99/max in ms, as markdown table rows.
"""
import json, re, subprocess, sys, threading, time

port, seconds, rate, out, binlog_file, binlog_pos = sys.argv[1:7]
seconds, rate = float(seconds), int(rate)
ROWS_PER_TXN = 50
results = {"rowbus": [], "mariadb-binlog": []}
stop = threading.Event()


def tail_rowbus():
    with open(out) as f:
        while not stop.is_set():
            line = f.readline()
            if not line or not line.endswith("\n"):
                if line:
                    f.seek(f.tell() - len(line))
                time.sleep(0.001)
                continue
            now = time.time()
            event = json.loads(line)
            sent = (event.get("after") or {}).get("sent")
            if sent is not None:
                results["rowbus"].append(now - float(sent))


def tail_binlog():
    peer = subprocess.Popen(
        ["mariadb-binlog", "--read-from-remote-server", "--host=127.0.0.1", f"--port={port}",
         "--user=root", "--stop-never", "--base64-output=decode-rows", "-v",
         f"--start-position={binlog_pos}", binlog_file],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    pattern = re.compile(r"^###\s+@2=([0-9.]+)")
    for line in peer.stdout:
        m = pattern.match(line)
        if m:
            results["mariadb-binlog"].append(time.time() - float(m.group(1)))
        if stop.is_set():
            break
    peer.kill()


readers = [threading.Thread(target=tail_rowbus, daemon=True),
           threading.Thread(target=tail_binlog, daemon=True)]
for r in readers:
    r.start()
time.sleep(1)
client = subprocess.Popen(["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", "-uroot", "lat"],
                          stdin=subprocess.PIPE, text=True)
txns = int(seconds * rate / ROWS_PER_TXN)
interval = ROWS_PER_TXN / rate
start = time.time()
for i in range(txns):
    target = start + i * interval
    delay = target - time.time()
    if delay > 0:
        time.sleep(delay)
    now = time.time()
    values = ",".join(f"({now:.6f})" for _ in range(ROWS_PER_TXN))
    client.stdin.write(f"INSERT INTO t (sent) VALUES {values};\n")
    client.stdin.flush()
client.stdin.close()
client.wait()
deadline = time.time() + 10
while time.time() < deadline and min(len(v) for v in results.values()) < txns * ROWS_PER_TXN:
    time.sleep(0.05)
stop.set()
names = {"rowbus": "rowbus, file sink (fsync per batch), line read back",
         "mariadb-binlog": "peer: mariadb-binlog --read-from-remote-server -v, row printed"}
# One markdown table row per reader: rows seen, p50, p99, max in ms.
for name, values in results.items():
    values = sorted(values)
    if not values:
        print(f"| {names[name]} | 0 | - | - | - |")
        continue
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))] * 1000
    print(f"| {names[name]} | {len(values):,} | {pick(0.50):.1f} | {pick(0.99):.1f} | {values[-1] * 1000:.1f} |")
