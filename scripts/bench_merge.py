"""Merges a bench run's sections into BENCHMARKS.md, keeping the sections of workloads not run.

Usage: bench_merge.py BENCHMARKS.md SECTIONS_DIR HEADER_FILE PROVENANCE LOG_FILE
A section starts at a line `### WORKLOAD: ...` and runs to the next `### ` or `## ` heading.
SECTIONS_DIR holds WORKLOAD.md for each workload of the run; each replaces that workload's
section, with PROVENANCE (the command, date and commit) as its first line under the heading.
The file is written as HEADER_FILE, the sections in the order of ORDER, then LOG_FILE (the
performance log).
"""
import os
import re
import sys

ORDER = ["decode", "memory", "sinks", "latency", "snapshot", "transforms", "search", "kafka"]
HEADING = re.compile(r"^### (\w+):")


def sections(text):
    """The `### workload:` sections of a BENCHMARKS.md, by workload."""
    found, key, lines = {}, None, []
    for line in text.splitlines(keepends=True):
        match = HEADING.match(line)
        if match or line.startswith("## ") or line.startswith("# "):
            if key:
                found[key] = "".join(lines).rstrip() + "\n"
            key, lines = (match.group(1), [line]) if match else (None, [])
        elif key:
            lines.append(line)
    if key:
        found[key] = "".join(lines).rstrip() + "\n"
    return found


def with_provenance(section, provenance):
    heading, _, rest = section.partition("\n")
    return f"{heading}\n\n{provenance}\n{rest.rstrip()}\n"


def main():
    path, new_dir, header_file, provenance, log_file = sys.argv[1:]
    kept = sections(open(path).read()) if os.path.exists(path) else {}
    for name in os.listdir(new_dir):
        workload = name.removesuffix(".md")
        kept[workload] = with_provenance(open(os.path.join(new_dir, name)).read(), provenance)
    known = [w for w in ORDER if w in kept] + sorted(set(kept) - set(ORDER))
    with open(path, "w") as out:
        out.write(open(header_file).read().rstrip() + "\n\n")
        for workload in known:
            out.write(kept[workload] + "\n")
        out.write(open(log_file).read())


if __name__ == "__main__":
    main()
