"""Headless Chromium check of a built page: did plotly draw, did any request leave the machine?

Used by the tests; also runnable by hand: ``python tests/browser.py _build/html/generated/X.html``.
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


def inspect_page(page: Path, screenshot: Path | None = None, timeout: float = 30.0) -> dict:
    """Open ``page`` over file:// with the network cut off; report what drew and what was requested.

    Returns ``{"plotly_svgs": int, "math": int, "requests": [urls], "external": [urls],
    "overflowing": [tables]}``: ``overflowing`` names each table that runs past the right edge of
    the page's article, unless it sits in a box of its own that scrolls.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="minima-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--no-first-run", "--disable-quic", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1280,2000",
                 # network off: every host resolves to nothing and any proxy-able request dies
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(page.resolve().as_uri())
        count_svgs = "return document.querySelectorAll('.js-plotly-plot svg.main-svg').length"
        try:
            WebDriverWait(driver, timeout).until(lambda d: d.execute_script(count_svgs) > 0)
        except Exception:
            pass  # reported as zero below
        svgs = driver.execute_script(count_svgs)
        math = driver.execute_script("return document.querySelectorAll('mjx-container').length")
        overflowing = driver.execute_script(OVERFLOWING_TABLES)
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
            "overflowing": overflowing}


if __name__ == "__main__":
    report = inspect_page(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(json.dumps({k: v if k != "requests" else len(v) for k, v in report.items()}, indent=2))
