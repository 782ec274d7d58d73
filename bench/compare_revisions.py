"""Run benchmarks on an earlier revision and on this tree, one after the other, in one run.

A change that must not slow anything down is measured against the code it replaces on
the same machine, minutes apart: the earlier revision is checked out into a temporary
git worktree (removed afterwards), and each benchmark script runs there and here, in
turn, with the same arguments. Each script prints its own figures and ratios to its own
baseline; this prints them under a heading per revision, then one table of the lines that
carry the figures named by ``--grep`` (default: ratios and p50s). A script that the earlier
revision lacks is copied into its tree, so both figures come from the same measuring code
(``--head-script`` copies it in any case: a script whose measuring code changed).

Usage:
    python bench/compare_revisions.py BASE_REF -- scan_bench.py --part rescan
    python bench/compare_revisions.py BASE_REF --rounds 2 -- legacy_import_bench.py
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GREP = r"(\d+(\.\d+)?x\b|p50|CPU s / 1000)"


def run_bench(tree: Path, script: str, args: list[str]) -> str:
    """Run ``bench/<script>`` of ``tree`` with ``args`` and return what it printed."""
    proc = subprocess.run(
        [sys.executable, str(tree / "bench" / script), *args],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed in {tree}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--rounds", type=int, default=1, help="base then head, this many times")
    parser.add_argument("--grep", default=DEFAULT_GREP, help="the lines the summary keeps")
    parser.add_argument(
        "--head-script",
        action="store_true",
        help="measure the earlier revision with this tree's copy of the script too",
    )
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, bench = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    if not bench:
        parser.error("name a benchmark script after --")
    script, script_args = bench[0], bench[1:]
    pattern = re.compile(args.grep)
    with tempfile.TemporaryDirectory(prefix="hikaze-base-") as scratch:
        base_tree = Path(scratch) / "tree"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(base_tree), args.base],
            check=True,
            capture_output=True,
        )
        try:
            if args.head_script or not (base_tree / "bench" / script).exists():
                shutil.copy2(REPO / "bench" / script, base_tree / "bench" / script)
            summary: list[tuple[str, str]] = []
            for n in range(1, args.rounds + 1):
                for label, tree in ((f"base {args.base}", base_tree), ("head", REPO)):
                    out = run_bench(tree, script, script_args)
                    print(f"===== {label}, round {n} =====\n{out}", flush=True)
                    summary += [
                        (label, line.strip()) for line in out.splitlines() if pattern.search(line)
                    ]
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(base_tree)],
                check=False,
                capture_output=True,
            )
    print("===== summary =====")
    for label, line in summary:
        print(f"{label:>20} | {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
