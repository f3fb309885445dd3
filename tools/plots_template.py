"""Write the offline HTML template of `dvc plots show` / `dvc plots diff`: Vega, Vega-Lite and Vega-Embed inlined.

DVC's default page loads them from a CDN, so offline it shows blank charts. `make plots-template` fetches the three
packages from the npm registry (`npm pack`, versions pinned in the Makefile), runs this script and points DVC at the
page (`dvc config --local plots.html_template`). Usage: python tools/plots_template.py PACKS_DIR OUTPUT.html
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

# Each package's tarball (npm pack) and its browser build: vega and vega-lite are BSD-3-Clause, vega-embed BSD-3-Clause.
BUILDS = {
    "vega": "package/build/vega.min.js",
    "vega-lite": "package/build/vega-lite.min.js",
    "vega-embed": "package/build/vega-embed.min.js",
}

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC plots</title>
{scripts}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def _build(packs: Path, name: str) -> tuple[str, str, str]:
    tarball = next(packs.glob(f"{name}-[0-9]*.tgz"))
    version = tarball.name.removeprefix(f"{name}-").removesuffix(".tgz")
    with tarfile.open(tarball) as archive:
        code = archive.extractfile(BUILDS[name]).read().decode("utf-8")
        license_text = archive.extractfile("package/LICENSE").read().decode("utf-8").splitlines()[0]
    return version, code.replace("</script", "<\\/script"), license_text


def write_template(packs: Path, output: Path) -> Path:
    scripts = []
    for name in BUILDS:
        version, code, license_line = _build(packs, name)
        scripts.append(
            f"    <!-- {name} {version} from the npm registry; {license_line}; BSD-3-Clause -->\n    <script>{code}</script>"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    page = PAGE.format(scripts="\n".join(scripts))
    if "{plot_divs}" not in page or "cdn.jsdelivr" in page:
        raise SystemExit("the template lost its {plot_divs} placeholder or still names a CDN")
    output.write_text(page, encoding="utf-8")
    return output


if __name__ == "__main__":
    written = write_template(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {written} ({written.stat().st_size // 1024} kB)")
