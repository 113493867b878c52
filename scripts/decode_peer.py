#!/usr/bin/env python3
"""The decode workload's third reader: the `mysql-replication` PyPI library (pure Python, on
PyMySQL) streaming the same binlog from the server as a replica and decoding every row. Prints
rows/s for ROWS rows of FILE. Run by scripts/bench.sh from its virtualenv."""
import sys, time
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent

port, log_file, rows_wanted = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
stream = BinLogStreamReader(
    connection_settings={"host": "127.0.0.1", "port": port, "user": "root", "passwd": ""},
    server_id=4242, log_file=log_file, log_pos=4, resume_stream=True, blocking=False,
    only_events=[WriteRowsEvent], is_mariadb=True)
seen = 0
start = time.time()
for event in stream:
    for row in event.rows:
        seen += 1
    if seen >= rows_wanted:
        break
elapsed = time.time() - start
stream.close()
if seen < rows_wanted:
    sys.exit(f"decoded {seen} rows, expected {rows_wanted}")
print(rows_wanted / elapsed)
