"""End to end: `mofrr serve` with the shipped pipeline in a real headless Chromium.

Starts the server on a free loopback port, uploads examples/retouched.png as an aligned crop, waits for the
result, checks the probabilities and the restored image on the page, downloads the report zip and checks its
JSON, checks that every request the page made went to the server, saves a screenshot, and stops the server:
its temporary folder is gone and nothing was written in its working folder.

Needs Debian's ``chromium`` and ``chromium-driver`` (the README's test command installs them) and the ``web``
extra; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

pytest.importorskip("gradio", reason="needs the web extra: pip install 'mofrr[web]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install 'mofrr[test]'")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "retouched.png"
SCREENSHOT = os.environ.get("MOFRR_SERVE_SCREENSHOT")  # also save the screenshot there (docs/img/serve.png)
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
# The server runs under an audit hook that reports any DNS lookup or connection to a non-loopback host.
GUARDED_MAIN = """
import ipaddress, sys
def loopback(host):
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback or str(host) in ("0.0.0.0", "::")
    except ValueError:
        return False
def hook(event, args):
    if event == "socket.getaddrinfo" and not loopback(args[0]):
        print(f"offline-violation: getaddrinfo {args[0]}", file=sys.stderr, flush=True)
    if event == "socket.connect" and isinstance(args[1], tuple) and not loopback(args[1][0]):
        print(f"offline-violation: connect {args[1]}", file=sys.stderr, flush=True)
sys.addaudithook(hook)
from mofrr_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver "
                    "(the README's test command installs them)")
    return chromium, driver


@pytest.fixture
def server(tmp_path):
    """``(url, process, folders)``: `mofrr serve --port 0` in an empty working folder and TMPDIR."""
    browser_paths()  # skip before starting the server if there is no browser
    folders = {"cwd": tmp_path / "cwd", "tmp": tmp_path / "tmp"}
    for folder in folders.values():
        folder.mkdir()
    env = {**os.environ, "TMPDIR": str(folders["tmp"]), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "torch-cache")}  # `import torch` makes it in TMPDIR
    process = subprocess.Popen([sys.executable, "-c", GUARDED_MAIN, "serve", "--port", "0"], cwd=folders["cwd"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url, lines, deadline = None, [], time.monotonic() + 60
    while url is None and time.monotonic() < deadline and process.poll() is None:
        line = process.stdout.readline()
        lines.append(line)
        if match := re.search(r"running on (http://\S+)", line):
            url = match.group(1)
    if url is None:
        process.kill()
        pytest.fail(f"mofrr serve did not start: {''.join(lines)} {process.stderr.read()}")
    yield url, process, folders
    if process.poll() is None:
        process.kill()


def chromium_driver(downloads: Path):
    chromium, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1500", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-default-apps"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    try:
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    except Exception as error:  # noqa: BLE001 - a browser that cannot start here is an environment problem
        pytest.skip(f"chromium could not start: {str(error).splitlines()[0]}")
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for (Chrome's network log: also requests that were blocked or failed)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_for_file(folder: Path, pattern: str, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(pattern) if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {pattern} downloaded into {folder}: {sorted(p.name for p in folder.iterdir())}")


def upload(driver, wait, path: Path) -> None:
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#upload input[type=file]")))
    driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(path))
    wait.until(lambda d: any(link.get_attribute("download") == path.name  # the link appears once uploaded
                             for link in d.find_elements(By.CSS_SELECTOR, "#upload a[download]")))


@pytest.mark.slow
def test_restore_in_the_browser(server, tmp_path):
    url, process, folders = server
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium_driver(downloads)
    wait = WebDriverWait(driver, 40)
    try:
        driver.get(url)
        upload(driver, wait, not_an_image)
        driver.find_element(By.ID, "restore").click()  # a bad upload: the CLI's line in the page, server goes on
        wait.until(lambda d: "notes.png: not a readable image (unknown or corrupt format)" in d.page_source)
        driver.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Clear']").click()
        upload(driver, wait, EXAMPLE)
        driver.find_element(By.CSS_SELECTOR, "#aligned input[type=checkbox]").click()
        driver.find_element(By.ID, "restore").click()
        wait.until(expected_conditions.visibility_of_element_located((By.ID, "download-report")))

        rows = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#probabilities tbody tr")]
        summary = driver.find_element(By.ID, "summary").text
        slider_images = driver.find_elements(By.CSS_SELECTOR, "#slider img")
        heatmap_images = driver.find_elements(By.CSS_SELECTOR, "#heatmap img")
        assert len(slider_images) == 2 and all(img.get_attribute("naturalWidth") == "224" for img in slider_images)
        assert heatmap_images and int(heatmap_images[0].get_attribute("naturalWidth")) >= 224
        driver.save_screenshot(str(tmp_path / "serve.png"))

        driver.find_element(By.ID, "download-report").click()
        report_zip = wait_for_file(downloads, "*.zip")
        urls = requested_urls(driver)
    finally:
        driver.quit()

    with zipfile.ZipFile(report_zip) as archive:
        names = sorted(archive.namelist())
        report = json.loads(archive.read("retouched-restored-report/retouched-restored.json"))
    assert names == ["retouched-restored-report/retouched-restored.heatmap.png",
                     "retouched-restored-report/retouched-restored.json",
                     "retouched-restored-report/retouched-restored.side_by_side.png"]
    assert report["input"] == "retouched.png" and report["mode"] == "aligned" and report["image_size"] == [224, 224]
    probabilities = report["faces"][0]["probabilities"]
    assert set(probabilities) == {"white", "smooth", "face", "eye"}
    for retouch_type, probability in probabilities.items():  # the page shows what the report says
        assert any(row.split()[:3] == ["1", retouch_type, f"{probability:g}"] for row in rows), (retouch_type, rows)
    assert "retouched.png" in summary and "experts run:" in summary

    remote = sorted({u for u in urls if not u.startswith(("data:", "blob:")) and urlsplit(u).hostname not in LOOPBACK})
    assert urls and not remote, remote
    with Image.open(tmp_path / "serve.png") as shot:
        assert shot.format == "PNG" and shot.width >= 1200
        if SCREENSHOT:  # 256 colours keep the docs' copy small
            shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                SCREENSHOT, optimize=True)

    (workdir,) = folders["tmp"].iterdir()  # uploads and results went to the server's temporary folder
    assert workdir.name.startswith("mofrr-serve-") and list(workdir.rglob("retouched.png"))
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    # stderr: the bad upload's line and nothing else (no "offline-violation" from the audit hook, no traceback)
    assert err.splitlines() == ["error: notes.png: not a readable image (unknown or corrupt format)"], err
    assert "stopped; removed" in out
    assert list(folders["tmp"].iterdir()) == [], "temporary files left after the server stopped"
    assert list(folders["cwd"].iterdir()) == [], "files written in the server's working folder"
