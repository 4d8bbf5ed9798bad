"""First paint of the web map: `/map` in headless Chromium (Playwright performance timing), every request that
leaves the server aborted (the offline basemap), a fresh browser context (cold cache) each run.

    .venv/bin/python bench/map_paint.py http://127.0.0.1:8000/map [runs]

Prints first-paint / first-contentful-paint and the time until the map is loaded with every tile in view drawn.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from map_browser_util import chromium  # noqa: E402

PAINTS = """() => { const e = performance.getEntriesByType('paint');
    const g = n => (e.find(x => x.name === n) || {}).startTime;
    return {fp: g('first-paint'), fcp: g('first-contentful-paint'), now: performance.now()}; }"""


def main(url: str, runs: int) -> None:
    origin = url.split("/map")[0]
    fp: list[float] = []
    fcp: list[float] = []
    loaded: list[float] = []
    with chromium() as browser:
        for _ in range(runs):
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(origin) else r.abort())
            page = ctx.new_page()
            page.goto(url)
            page.wait_for_function("() => window.datsoReady === true && window.datsoMap.areTilesLoaded()",
                                   timeout=60000)
            t = page.evaluate(PAINTS)
            fp.append(t["fp"])
            fcp.append(t["fcp"])
            loaded.append(t["now"])
            ctx.close()
    for name, xs in (("first-paint", fp), ("first-contentful-paint", fcp), ("map loaded, tiles drawn", loaded)):
        print(f"{name} ms: {[round(x) for x in xs]} median {round(statistics.median(xs))} max {round(max(xs))}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7)
