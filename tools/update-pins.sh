#!/usr/bin/env bash
# Regenerates requirements.txt (the exact versions the book is tested with)
# from requirements.in (what it needs, as ranges). One command:
#
#   tools/update-pins.sh                        # after editing requirements.in: pins that still fit are kept
#   tools/update-pins.sh --upgrade              # every pin to the newest release that fits
#   tools/update-pins.sh -P numpy -P pytest     # just these (and what they need)
#
# Arguments go to pip-compile (pip-tools, installed into a throwaway virtual
# environment). The pins are resolved for the Python that runs it
# (${PYTHON:-python3}) on this platform; the header of requirements.txt says
# which. Then the compiled list is post-processed:
#   - torch and torchvision keep requirements.in's ranges, so a machine's own
#     CPU or CUDA build satisfies them;
#   - packages that only torch/torchvision need (nvidia-*, triton, cuda-*,
#     filelock, ...: they differ between those builds) are not pinned;
#   - `-e .` (the package, editable) is the last line.
# Commit requirements.txt only after CI (.ci/run) has passed with it.
set -euo pipefail
cd "$(dirname "$0")/.."

PIP_TOOLS_VERSION=7.6.2
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "pip-tools==$PIP_TOOLS_VERSION"

# The current pins seed the resolution: pip-compile keeps a pin unless it no
# longer fits or an upgrade is asked for.
if [ -f requirements.txt ]; then
  grep -E '^[A-Za-z0-9._-]+==' requirements.txt > "$work/compiled.txt" || true
fi

# pip-compile ignores a constraint file named in pip's configuration (such as
# a machine's cap on torch releases) but honours `-c` in an input file: pass
# it on, so the resolution is the one `pip install` makes on this machine.
sources=(requirements.in)
configured=$("$work/venv/bin/python" -m pip config list 2>/dev/null |
  sed -n "s/^\(global\|install\)\.constraint='\(.*\)'$/\2/p")
for c in ${PIP_CONSTRAINT:-} $configured; do
  [ -f "$c" ] && printf -- '-c %s\n' "$c" >> "$work/constraints.in"
done
[ -f "$work/constraints.in" ] && sources+=("$work/constraints.in")

"$work/venv/bin/pip-compile" --quiet --no-header --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  --annotation-style split --output-file "$work/compiled.txt" "$@" "${sources[@]}"

"$work/venv/bin/python" - "$work/compiled.txt" requirements.in requirements.txt \
  "pip-tools $PIP_TOOLS_VERSION" <<'PY'
"""Post-process pip-compile's output into requirements.txt (see the script's header)."""
import platform
import re
import sys
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

compiled, source, target, tool = sys.argv[1:]
RANGED = {"torch", "torchvision"}  # kept as ranges; what only they need is not pinned

# pip-compile's blocks: a requirement line, then its "# via" lines
blocks = []  # [name, requirement line, [via entries]]
for line in open(compiled).read().splitlines():
    if not line.strip() or (line.startswith("#") and not line.startswith("    #")):
        continue
    if not line.startswith(" "):
        name = "-e" if line.startswith("-e") else canonicalize_name(line.split("==")[0])
        blocks.append([name, line, []])
        continue
    entry = line.strip().lstrip("#").strip()
    if entry.startswith("via "):
        entry = entry[len("via "):]
    if entry and entry != "via":
        blocks[-1][2].append(entry)

ranges = {}
for line in open(source).read().splitlines():
    line = line.split("#")[0].strip()
    if line and not line.startswith("-"):
        req = Requirement(line)
        if canonicalize_name(req.name) in RANGED:
            ranges[canonicalize_name(req.name)] = line
missing = RANGED - ranges.keys()
if missing:
    sys.exit(f"requirements.in has no range for {', '.join(sorted(missing))}")

# What only torch/torchvision (or what only they need) require
left_out = set(RANGED)
changed = True
while changed:
    changed = False
    for name, _, via in blocks:
        dependents = {canonicalize_name(v) for v in via if not v.startswith(("-r", "-c"))}
        direct = any(v.startswith("-r") for v in via)
        if name not in left_out and name != "-e" and not direct and dependents and dependents <= left_out:
            left_out.add(name)
            changed = True

names = {b[0] for b in blocks}
if not RANGED <= names:
    sys.exit("pip-compile's output lacks torch or torchvision")
if "-e" not in names:
    sys.exit("pip-compile's output lacks the package itself (-e .)")

out = [
    "# The exact versions the book is built and tested with: `pip install -r requirements.txt`",
    "# installs them, and CI installs exactly these into a new virtual environment,",
    "# checks them against `pip freeze` and runs the tests.",
    f"# Resolved for Python {platform.python_version()} on {platform.system()} {platform.machine()}.",
    "#",
    f"# Generated from requirements.in by tools/update-pins.sh (pip-compile from {tool},",
    "# then post-processed): edit requirements.in and run that script rather than",
    "# editing this file (docs/contributing.md: \"Dependencies and the pinned versions\").",
    "#",
    "# torch and torchvision are ranges, so a machine's own build (CPU or CUDA) satisfies",
    "# them, and what only they need differs between those builds and is left to them:",
]
rest = sorted(left_out - RANGED)
line = "#  "
for name in rest:
    if len(line) + len(name) + 2 > 88:
        out.append(line.rstrip())
        line = "#  "
    line += f" {name},"
out.append(line.rstrip(",") + ".")

for name, req, via in sorted(blocks, key=lambda b: b[0]):
    if name == "-e" or (name in left_out and name not in RANGED):
        continue
    via = [v for v in via if not v.startswith("-c")]
    out.append(ranges[name] if name in RANGED else req)
    if len(via) == 1:
        out.append(f"    # via {via[0]}")
    elif via:
        out.append("    # via")
        out.extend(f"    #   {v}" for v in via)

out += ["# the package itself (imports as `autoencoders`), editable", "-e ."]
open(target, "w").write("\n".join(out) + "\n")
pinned = sum(1 for l in out if re.match(r"^[a-z0-9._-]+==", l))
print(f"{target}: {pinned} pins, {len(RANGED)} ranges, {len(rest)} left to torch; "
      f"Python {platform.python_version()}")
PY
