"""Parses Prometheus text (stdin) with the reference parser and prints it as JSON.

Output: {"families": {name: {"type": ..., "samples": [{"name", "labels", "value"}]}}}.
A text the parser refuses exits non-zero with its error, failing the Rust test that ran it.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    text = sys.stdin.read()
    families = {}
    for family in text_string_to_metric_families(text):
        if family.name in families:
            raise SystemExit(f"family {family.name} appears twice")
        families[family.name] = {
            "type": family.type,
            "samples": [
                {
                    "name": s.name,
                    "labels": s.labels,
                    "value": s.value if math.isfinite(s.value) else str(s.value),
                }
                for s in family.samples
            ],
        }
    json.dump({"families": families}, sys.stdout)


if __name__ == "__main__":
    main()
