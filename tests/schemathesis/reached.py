"""Checks that the stateful phases reached every operation with state.

usage: reached.py openapi.json report.ndjson...

Each report is schemathesis' NDJSON event stream; an operation counts as reached when a
stateful scenario sent a request to it. Health, readiness, metrics and the description
itself hold no state to link and are left to the other phases.
"""

import json
import sys

STATELESS = {"/healthz", "/readyz", "/metrics", "/openapi.json"}


def main() -> int:
    doc = json.load(open(sys.argv[1]))
    wanted = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        if path not in STATELESS
        for method in item
    }
    reached = set()
    for report in sys.argv[2:]:
        for line in open(report):
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished or finished.get("phase") != "stateful":
                continue
            for case in finished["recorder"]["cases"].values():
                value = case["value"]
                reached.add((value["method"].upper(), value["path"]))
    missing = sorted(wanted - reached)
    for method, path in missing:
        print(f"stateful testing never reached {method} {path}", file=sys.stderr)
    print(f"stateful testing reached {len(wanted & reached)} of {len(wanted)} operations")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
