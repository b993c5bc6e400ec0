#!/usr/bin/env python3
"""List the librdkafka integration tests that need a broker.

Reads the test table (`struct test tests[]`) in the copied librdkafka
tests/test.c and prints one line per test: `<name>\t<kind>`, where kind is
  broker   talks to a broker in the chosen scenario: Runnel runs these
  local    needs no broker (TEST_F_LOCAL), not run here
  known    marked TEST_F_KNOWN_ISSUE upstream, not run
  manual   marked TEST_F_MANUAL, not run
  scenario needs another broker scenario (e.g. noautocreate: auto-create off)
Usage: list_tests.py path/to/tests/test.c [--broker] [--scenario NAME]
(the scenario is "default" unless given, as in librdkafka's runner)
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
    scenario = "default"
    if "--scenario" in sys.argv[2:]:
        scenario = sys.argv[sys.argv.index("--scenario") + 1]
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
        elif scenario not in (scen.group(1).split(",") if scen else ["default"]):
            kind = "scenario"
        else:
            kind = "broker"
        if only_broker and kind != "broker":
            continue
        print(f"{name}\t{kind}")


if __name__ == "__main__":
    main()
