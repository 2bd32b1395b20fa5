#!/usr/bin/env python3
"""Write the claim tests' snapshot from a build's record of its claims.

    AUTOENCODERS_CLAIMS_RECORD=/tmp/claims.jsonl jupyter-book build . -W --keep-going
    python tools/claim-snapshot.py /tmp/claims.jsonl

Each line of the record holds a claim's key, whether it held and the numbers
its test read (autoencoders.claims.check_claims appends them). The snapshot,
tests/data/claim-numbers.json, keeps the last numbers of every claim, merged
into what the file already has; tests/test_claim_breaks.py checks that every
claim holds on them and fails once they are broken.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[1] / "tests" / "data" / "claim-numbers.json"


def main(records: list[str]) -> int:
    if not records:
        print(__doc__, file=sys.stderr)
        return 2
    snapshot = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.is_file() else {}
    failed = []
    for record in records:
        for line in Path(record).read_text().splitlines():
            entry = json.loads(line)
            snapshot[entry["key"]] = entry["numbers"]
            if not entry["holds"]:
                failed.append(entry["key"])
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(json.dumps(dict(sorted(snapshot.items())), indent=1) + "\n")
    print(f"{SNAPSHOT}: {len(snapshot)} claims")
    if failed:
        print(f"these claims did not hold in the recorded build: {', '.join(sorted(set(failed)))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
