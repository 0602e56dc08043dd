"""`make audit`: pip-audit of the locked dependencies (every group), from `uv export --locked`.

Exit 0 when no known vulnerability (or when the vulnerability database cannot be reached: that is said
loudly, and the build goes on); exit 1 when a locked package has a known vulnerability.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = ("ConnectionError", "Max retries exceeded", "NameResolutionError", "Temporary failure in name",
               "timed out", "Network is unreachable", "ProxyError", "SSLError")  # fmt: skip


def main() -> int:
    uv = os.environ.get("UV", str(ROOT / ".tools" / "bin" / "uv"))
    exported = subprocess.run(
        [
            uv,
            "export",
            "--locked",
            "--format",
            "requirements-txt",
            "--all-groups",
            "--no-emit-project",
            "--no-header",
            "--quiet",
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if exported.returncode != 0:
        print(f"audit: uv export failed:\n{exported.stderr}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(exported.stdout)
        report = Path(tmp) / "audit.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "-r",
                str(reqs),
                "--no-deps",
                "--disable-pip",
                "--progress-spinner",
                "off",
                "-f",
                "json",
                "-o",
                str(report),
                "--timeout",
                "20",
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=False,
        )
        data = json.loads(report.read_text()) if report.exists() and report.stat().st_size else None
    packages = len([line for line in exported.stdout.splitlines() if "==" in line])
    if data is None:
        text = done.stderr + done.stdout
        if any(marker in text for marker in UNREACHABLE):
            print("audit: WARNING the vulnerability database (PyPI/OSV) is unreachable from here: "
                  f"{packages} locked packages NOT audited; run `make audit` where the network allows.")  # fmt: skip
            return 0
        print(f"audit: pip-audit failed ({done.returncode}):\n{text[-3000:]}", file=sys.stderr)
        return 1
    deps = data.get("dependencies", [])
    if deps and all(d.get("skip_reason") for d in deps):
        # The PyPI JSON API answered "not found" for every package: a mirror or a sandbox, not an audit.
        print("audit: WARNING the vulnerability database is unreachable from here (PyPI's JSON API knows "
              f"none of the {packages} locked packages: a mirror?); NOT audited. Run `make audit` where "
              "https://pypi.org/pypi/<name>/<version>/json answers.")  # fmt: skip
        return 0
    vulnerable = [(d["name"], d["version"], v) for d in deps for v in d.get("vulns", [])]
    for name, version, v in vulnerable:
        fix = ", ".join(v.get("fix_versions") or ()) or "no fixed version yet"
        print(f"audit: {name} {version}: {v['id']} (fixed in {fix})")
    skipped = [d["name"] for d in deps if d.get("skip_reason")]
    print(f"audit: {packages} locked packages, {len(vulnerable)} known vulnerabilities"
          + (f", not auditable: {', '.join(skipped)}" if skipped else ""))  # fmt: skip
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
