"""Write every loss reference file: runs each family's generator
(gen_losses_<family>.py), which writes tests/reference/losses_<family>.json.

Run with Debian's python3-torch: /usr/bin/python3 tests/reference/gen_losses.py
The JSON files are committed, so the tests need no Python."""
import json
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ["softmax", "binary", "regression", "margin", "ctc"]


def main():
    total = 0
    for family in FAMILIES:
        script = os.path.join(HERE, f"gen_losses_{family}.py")
        if not os.path.exists(script):
            print(f"{family}: no generator yet", file=sys.stderr)
            continue
        runpy.run_path(script, run_name="__main__")
        with open(os.path.join(HERE, f"losses_{family}.json")) as f:
            data = json.load(f)
        cases = data["cases"] if isinstance(data, dict) and "cases" in data else data
        print(f"{family}: {len(cases)} cases")
        total += len(cases)
    print(f"total: {total} cases")


if __name__ == "__main__":
    main()
