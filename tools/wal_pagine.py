#!/usr/bin/env python3
"""Which B-trees the commits in a SQLite WAL wrote, page by page.

Usage: wal_pagine.py DATABASE WAL_COPY [FIRST:LAST:NAME ...]

DATABASE is the database file (opened read-only, with its WAL, to map page numbers to
tables and indexes through the `dbstat` virtual table); WAL_COPY is a copy of its WAL
taken before anything closed the database (the last connection to close checkpoints
and deletes the WAL). Each FIRST:LAST:NAME is a range of frame numbers (0-based, as
`SqliteStore::wal_frames` reports them before and after a phase) to report on its
own; without ranges the whole WAL is one range. For each range: frames per commit,
and per B-tree the pages per commit and how many of them were also written by one of
the three commits before (pages that only the small size of the commits makes
rewritten). A name with `*` is an interior page, `+` another page type.

Used for BENCHMARKS.md, session 12 (with the checkpointer switched off for the run,
so that the WAL keeps every frame).
"""
import collections
import sqlite3
import struct
import sys


def owners(database):
    c = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    out = {}
    for name, pageno, kind in c.execute("SELECT name, pageno, pagetype FROM dbstat"):
        out[pageno] = name + ("" if kind == "leaf" else "*" if kind == "internal" else "+" + kind)
    c.close()
    return out


def frames(wal):
    with open(wal, "rb") as f:
        header = f.read(32)
        page_size = struct.unpack(">I", header[8:12])[0]
        salt = header[16:24]
        out = []
        while True:
            fh = f.read(24)
            if len(fh) < 24 or fh[8:16] != salt:
                break
            out.append(struct.unpack(">II", fh[:8]))
            f.seek(page_size, 1)
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    owner = owners(sys.argv[1])
    all_frames = frames(sys.argv[2])
    ranges = [tuple(r.split(":")) for r in sys.argv[3:]] or [(0, len(all_frames), "all")]
    print(f"{len(all_frames)} frames")
    for first, last, name in ranges:
        commits, current = [], []
        for page, db_size in all_frames[int(first):int(last)]:
            current.append(page)
            if db_size:
                commits.append(current)
                current = []
        if not commits:
            print(f"== {name}: no commit")
            continue
        n = len(commits)
        total = collections.Counter()
        repeated = collections.Counter()
        for i, commit in enumerate(commits):
            before = set()
            for j in range(max(0, i - 3), i):
                before.update(commits[j])
            for page in commit:
                tree = owner.get(page, "?free")
                total[tree] += 1
                if page in before:
                    repeated[tree] += 1
        frames_in = sum(len(c) for c in commits)
        print(f"== {name}: {frames_in} frames, {n} commits, {frames_in / n:.1f} frames/commit, "
              f"{sum(repeated.values()) / n:.1f} of them repeated")
        for tree, k in total.most_common():
            print(f"  {tree:45s} {k / n:6.2f}/commit  repeated {repeated[tree] / n:5.2f}")


if __name__ == "__main__":
    main()
