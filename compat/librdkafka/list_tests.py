#!/usr/bin/env python3
"""List the librdkafka integration tests that need a broker.

Reads the test table (`struct test tests[]`) in the copied librdkafka
tests/test.c and prints one line per test: `<name>\t<kind>`, where kind is
  broker   talks to a broker in the default scenario: Runnel runs these
  local    needs no broker (TEST_F_LOCAL), not run here
  known    marked TEST_F_KNOWN_ISSUE upstream, not run
  manual   marked TEST_F_MANUAL, not run
  scenario needs a non-default broker scenario (e.g. auto-create off), not run
Usage: list_tests.py path/to/tests/test.c [--broker]
"""
import re
import sys


def entries(src):
    start = src.index("struct test tests[] = {")
    i = start
    while True:
        i = src.find("_TEST(", i)
        if i < 0:
            return
        # Only entries of the table, which ends with "{NULL}".
        end_of_table = src.find("{NULL}", start)
        if i > end_of_table:
            return
        depth, j = 0, i + len("_TEST")
        while True:
            c = src[j]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        body = src[i + len("_TEST("):j]
        yield body
        i = j


def main():
    path = sys.argv[1]
    only_broker = "--broker" in sys.argv[2:]
    src = open(path, encoding="utf-8", errors="replace").read()
    # Drop comments so flags mentioned in them do not count.
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"(?m)^\s*//[^\n]*", "", src)
    for body in entries(src):
        name = body.split(",", 1)[0].strip()
        rest = body[len(name):]
        scen = re.search(r'\.scenario\s*=\s*"([^"]*)"', rest)
        if "TEST_F_LOCAL" in rest:
            kind = "local"
        elif "TEST_F_MANUAL" in rest:
            kind = "manual"
        elif re.search(r"TEST_F_KNOWN_ISSUE\b", rest):
            kind = "known"
        elif scen and "default" not in scen.group(1).split(","):
            kind = "scenario"
        else:
            kind = "broker"
        if only_broker and kind != "broker":
            continue
        print(f"{name}\t{kind}")


if __name__ == "__main__":
    main()
