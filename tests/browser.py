"""Headless Chromium check of a built page: did plotly draw, did any request leave the machine?

Used by the tests; also runnable by hand, on one page or on a whole built site (the default
profile's, say, which the tests do not build):

    python tests/browser.py _build/html/generated/X.html [screenshot.png]
    python tests/browser.py --site _build/html
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# chrome-untrusted: is the browser's own new-tab page, loaded before navigation.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-untrusted:", "devtools:")


# Tables whose right edge (or that of the scrolling box holding them) passes the article's.
OVERFLOWING_TABLES = """
const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const limit = article.getBoundingClientRect().right + 1;
const found = [];
document.querySelectorAll('table').forEach((table, index) => {
  let box = table.parentElement, scrolls = false;
  while (box && box !== article && box !== document.body) {
    const overflow = getComputedStyle(box).overflowX;
    if (overflow === 'auto' || overflow === 'scroll') { scrolls = true; break; }
    box = box.parentElement;
  }
  const edge = (scrolls ? box : table).getBoundingClientRect().right;
  if (edge > limit) found.push(`table ${index} (${table.className || 'no class'}) ${Math.round(edge - limit)} px too wide`);
});
return found;
"""


# Tables wider than the article's column, whether or not a box around them scrolls; folded
# tables (<details>) are opened first, as a reader would.
WIDE_TABLES = """
document.querySelectorAll('details').forEach(d => d.open = true);
const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const width = article.getBoundingClientRect().width + 1;
const found = [];
document.querySelectorAll('table').forEach((table, index) => {
  const w = table.getBoundingClientRect().width;
  if (w > width) found.push(`table ${index} (${table.className || 'no class'}) ${Math.round(w)} px in a ${Math.round(width)} px column`);
});
return found;
"""

# Cells holding numbers (digits, signs, decimal points, exponents, %, ±) with a number broken
# over two lines: more lines than the cell has words.
WRAPPED_NUMBERS = """
const found = [];
document.querySelectorAll('td, th').forEach(cell => {
  const text = cell.innerText.trim();
  if (!/\\d/.test(text) || !/^[-+\\u2212\\d.,eE%\\u00b1x\\s\\[\\]]+$/.test(text)) return;
  const range = document.createRange();
  range.selectNodeContents(cell);
  const tops = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0).map(r => Math.round(r.top)));
  if (tops.size > text.split(/\\s+/).length) found.push(`"${text}" breaks over ${tops.size} lines`);
});
return found;
"""

# Plotly figures: an axis whose range misses its data, or runs more than a decade past it on a
# log axis; a legend entry whose trace draws nothing.
FIGURE_DEFECTS = """
const found = [];
document.querySelectorAll('.js-plotly-plot').forEach((gd, index) => {
  const layout = gd._fullLayout, title = (layout.title && layout.title.text) || `figure ${index}`;
  if (!layout) return;
  const values = {};
  (gd._fullData || []).forEach(trace => {
    if (trace.visible !== true) return;
    const ys = (trace.y || []).filter(v => v !== null && v !== undefined && isFinite(v));
    const xs = (trace.x || []).filter(v => v !== null && v !== undefined && isFinite(v));
    if (trace.showlegend && layout.showlegend !== false && trace.type === 'scatter' && ys.length === 0)
      found.push(`${title}: legend entry "${trace.name}" draws nothing`);
    for (const [axis, data] of [['y' + (trace.yaxis || 'y').slice(1), ys], ['x' + (trace.xaxis || 'x').slice(1), xs]]) {
      (values[axis] = values[axis] || []).push(...data.map(Number));
    }
  });
  for (const [name, data] of Object.entries(values)) {
    const key = name[0] + 'axis' + name.slice(1);
    const axis = layout[key];
    if (!axis || !axis.range || !data.length || axis.type === 'category' || axis.type === 'date') continue;
    const log = axis.type === 'log';
    const points = log ? data.filter(v => v > 0).map(Math.log10) : data;
    if (!points.length) continue;
    const low = Math.min(...points), high = Math.max(...points);
    const [r0, r1] = [Math.min(...axis.range), Math.max(...axis.range)];
    const span = Math.max(high - low, 1e-12);
    if (high < r0 || low > r1) found.push(`${title}: ${key} range [${r0}, ${r1}] misses its data [${low}, ${high}]`);
    else if (log && (r1 - high > 1 || low - r0 > 1))
      found.push(`${title}: ${key} runs ${Math.max(r1 - high, low - r0).toFixed(1)} decades past its data`);
  }
});
return found;
"""

# How far down the page (px) the bottom of each selected element lies.
BOTTOMS = """
return arguments[0].map(sel => { const el = document.querySelector(sel);
  return el ? Math.round(el.getBoundingClientRect().bottom + window.scrollY) : null; });
"""


def available() -> str | None:
    """None when the check can run, else the reason it cannot."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} not found (install Debian packages chromium and chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def inspect_page(page: Path, screenshot: Path | None = None, timeout: float = 30.0, window=(1280, 2000),
                 bottoms: tuple = ()) -> dict:
    """Open ``page`` over file:// with the network cut off, in a viewport of ``window`` (width, height) px;
    report what drew, what was requested and what a reader would find broken.

    Returns ``{"plotly_svgs": int, "math": int, "requests": [urls], "external": [urls],
    "overflowing": [tables], "wide": [tables], "wrapped": [cells], "figures": [defects],
    "bottoms": [px]}``: ``overflowing`` names each table that runs past the right edge of the
    page's article, unless it sits in a box of its own that scrolls; ``wide`` each table wider
    than the article's column (scrolling or not, folded ones opened); ``wrapped`` each cell
    whose number wraps; ``figures`` each plotly axis range that misses its data or runs more
    than a decade past it (log axes), and each legend entry that draws nothing; ``bottoms`` how
    far down the page each CSS selector of ``bottoms`` ends (``None``: not on the page).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="minima-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-quic", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
                 # network off: every host resolves to nothing and any proxy-able request dies
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        # the viewport itself is ``window`` (--window-size sizes the outer window, whose
        # invisible chrome takes about 140 px of the height in headless mode)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": window[0], "height": window[1], "deviceScaleFactor": 1, "mobile": False})
        driver.get(page.resolve().as_uri())
        count_svgs = "return document.querySelectorAll('.js-plotly-plot svg.main-svg').length"
        try:
            WebDriverWait(driver, timeout).until(lambda d: d.execute_script(count_svgs) > 0)
        except Exception:
            pass  # reported as zero below
        svgs = driver.execute_script(count_svgs)
        math = driver.execute_script("return document.querySelectorAll('mjx-container').length")
        overflowing = driver.execute_script(OVERFLOWING_TABLES)
        figures = driver.execute_script(FIGURE_DEFECTS)
        wrapped = driver.execute_script(WRAPPED_NUMBERS)
        heights = driver.execute_script(BOTTOMS, list(bottoms))
        wide = driver.execute_script(WIDE_TABLES)  # opens folded tables: last
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    external = [url for url in requests if not url.startswith(LOCAL_SCHEMES)]
    return {"plotly_svgs": svgs, "math": math, "requests": requests, "external": external,
            "overflowing": overflowing, "wide": wide, "wrapped": wrapped, "figures": figures, "bottoms": heights}


# The pages a reader meets, checked for the defects inspect_page reports; the landing page's
# first screen (1,400 x 900 px) must hold the reproduction table and the differences box.
SITE_PAGES = ("intro.html", "generated/90_claims.html", "generated/40_table1.html", "generated/50_no_barriers.html",
              "generated/60_table2.html", "generated/00_data_overview.html")
FIRST_SCREEN = ((1400, 900), ("table.minima-landing", "div.admonition"))


def site_defects(html: Path) -> list[str]:
    """Every defect a reader would meet on the built site under ``html`` (``_build/html``): a
    landing page whose first screen misses its table or box, MathJax that did not typeset,
    and per page of :data:`SITE_PAGES` present, a request off the machine, a table past or
    wider than its column, a wrapped number, a figure defect. Empty: the site is clean."""
    found = []
    window, selectors = FIRST_SCREEN
    landing = inspect_page(html / "intro.html", window=window, bottoms=selectors)
    if not landing["math"]:
        found.append("intro.html: MathJax did not typeset")
    for selector, bottom in zip(selectors, landing["bottoms"]):
        if bottom is None or bottom > window[1]:
            found.append(f"intro.html: {selector} ends at {bottom} px, below the {window[1]} px first screen")
    for page in SITE_PAGES:
        if not (html / page).exists():
            found.append(f"{page}: not built")
            continue
        report = landing if page == "intro.html" else inspect_page(html / page)  # the landing page opened once
        for defect in ("external", "overflowing", "wide", "wrapped", "figures"):
            found += [f"{page}: {defect}: {item}" for item in report[defect]]
    return found


if __name__ == "__main__":
    if sys.argv[1] == "--site":
        defects = site_defects(Path(sys.argv[2]))
        print("\n".join(defects) or f"{len(SITE_PAGES)} pages and the landing page's first screen: no defect")
        sys.exit(1 if defects else 0)
    report = inspect_page(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(json.dumps({k: v if k != "requests" else len(v) for k, v in report.items()}, indent=2))
