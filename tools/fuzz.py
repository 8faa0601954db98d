"""Long fuzzing run: the tests in tests/test_fuzz.py with many random examples.

    python tools/fuzz.py --examples 100000
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    args = parser.parse_args()
    env = dict(os.environ, PYRT_FUZZ_EXAMPLES=str(args.examples))
    test = Path(__file__).resolve().parent.parent / "tests" / "test_fuzz.py"
    return subprocess.call([sys.executable, "-m", "pytest", str(test), "-q", "-x"], env=env)


if __name__ == "__main__":
    sys.exit(main())
