"""Checks a driver image's `objdump -p` output: PE32+ (x64), native subsystem, every import
from an allowed DLL and among that DLL's exports, and some KS routines imported.

Usage: pe-imports.py OBJDUMP NT_ABI_JSON ALLOWED_DLLS [REQUIRED_KS_IMPORT...]
ALLOWED_DLLS is comma-separated (ks.sys,ntoskrnl.exe,hal.dll). Prints the import table; exit
status 1 with one line per problem.
"""

import json
import re
import sys

dump_path, abi_path, allowed_arg, *required = sys.argv[1:]
dump = open(dump_path).read()
exports = {dll.lower(): set(names) for dll, names in json.load(open(abi_path))["exports"].items()}
allowed = {dll.strip().lower() for dll in allowed_arg.split(",") if dll.strip()}
problems = []
if not re.search(r"^Magic\s+020b", dump, re.M):
    problems.append("not a PE32+ (x64) image")
if not re.search(r"^Subsystem\s+00000001", dump, re.M):
    problems.append("subsystem is not native")
imports = {}
dll = None
for line in dump.splitlines():
    match = re.match(r"\s*DLL Name: (\S+)", line)
    if match:
        dll = match.group(1).lower()
        imports[dll] = []
        continue
    match = re.match(r"\s+[0-9a-f]+\s+\d+\s+(\S+)$", line)
    if dll and match:
        imports[dll].append(match.group(1))
    elif dll and not line.strip():
        dll = None
if not imports:
    problems.append("no import table")
for dll, names in sorted(imports.items()):
    print(f"{dll}: {len(names)} imports: {' '.join(sorted(names))}")
    if dll not in allowed:
        problems.append(f"imports from {dll}, which is not one of {', '.join(sorted(allowed))}")
        continue
    for name in names:
        if name not in exports.get(dll, set()):
            problems.append(f"{name} is not an export of {dll}")
for name in required:
    if name not in imports.get("ks.sys", []):
        problems.append(f"{name} is not imported from ks.sys")
for problem in problems:
    print(f"pe-imports: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
