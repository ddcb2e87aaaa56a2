"""test_page.py — the web page of `sd serve` in a real browser: Debian's headless Chromium driven by Selenium types a
prompt, presses Generate, sees the live preview and the progress, then the result in the gallery with its settings,
downloads it — and the downloaded PNG is the CLI's picture for the same settings, pixel for pixel. The screenshot
(SD_PAGE_SCREENSHOT, default $WORK/page.png) is the README's picture of the page."""
import os
import shutil
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import sdtest as T
from sdtest import Server

W = T.WORK
PROMPT = "a large cyan circle on a black background, left"


def browser(download_dir):
    o = webdriver.ChromeOptions()
    o.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=W)
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--no-first-run", "--user-data-dir=" + profile, "--window-size=1200,900", "--disable-dev-shm-usage"):
        o.add_argument(a)
    o.add_experimental_option("prefs", {"download.default_directory": download_dir, "download.prompt_for_download": False})
    d = webdriver.Chrome(options=o, service=Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))
    d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    return d


def set_value(d, el_id, value):
    el = d.find_element(By.ID, el_id)
    el.clear()
    el.send_keys(str(value))


def main():
    srv = Server("--max-steps", "60", name="page")
    downloads = os.path.join(W, "downloads")
    shutil.rmtree(downloads, ignore_errors=True)
    os.makedirs(downloads)
    d = None
    try:
        d = browser(downloads)
        d.get("http://127.0.0.1:%d/" % srv.port)
        wait = WebDriverWait(d, 600, poll_frequency=0.05)
        # the form fills in from the server: samplers, and the loaded model's own defaults (the demo model's 128x128)
        wait.until(lambda d: d.find_element(By.ID, "width").get_attribute("value") == "128")
        sampler = Select(d.find_element(By.ID, "sampler"))
        assert "Euler a" in [o.text for o in sampler.options] and sampler.first_selected_option.text == "Euler a"
        assert "shapes" in d.find_element(By.ID, "model").text
        d.find_element(By.ID, "prompt").send_keys(PROMPT)
        set_value(d, "steps", 12)
        set_value(d, "seed", 123)
        set_value(d, "count", 2)
        d.find_element(By.ID, "generate").click()
        # while it renders: progress text, then a preview image
        wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Rendering"))
        wait.until(lambda d: int(d.find_element(By.ID, "preview").get_attribute("data-previews")) >= 1)
        assert d.find_element(By.ID, "preview").is_displayed()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery .card")) == 2)
        previews = int(d.find_element(By.ID, "preview").get_attribute("data-previews"))
        status = d.find_element(By.ID, "status").text
        assert status == "Done: 2 image(s).", status
        T.note("%d previews shown while 2 images of 12 steps rendered" % previews)
        T.ok("page_generates_with_preview_and_progress")
        cards = d.find_elements(By.CSS_SELECTOR, "#gallery .card")
        texts = [c.find_element(By.TAG_NAME, "pre").text for c in cards]
        assert texts[0].startswith(PROMPT + "\nSteps: 12, Sampler: Euler a") and "Seed: 124" in texts[0] and "Seed: 123" in texts[1], texts
        shot = os.environ.get("SD_PAGE_SCREENSHOT", os.path.join(W, "page.png"))
        d.save_screenshot(shot)
        cards[1].find_element(By.CSS_SELECTOR, "a.download").click()  # the first image, seed 123
        path = os.path.join(downloads, "sd-123.png")
        deadline = time.time() + 60
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.1)
        assert os.path.exists(path), "no download: %s" % os.listdir(downloads)
        ref = T.cli_render(os.path.join(W, "page-ref.png"), *T.a1111_cli_args(PROMPT, 123, 12, 128, 128, cfg=3, sampler="euler_a"))
        diff = T.same_pixels(open(path, "rb").read(), ref)
        assert diff is None, "the download vs the CLI: " + diff
        assert T.png_text(open(path, "rb").read())["parameters"] == texts[1], "the PNG carries the settings shown"
        T.ok("page_gallery_download_equals_cli")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        T.fail("page", "%s: %s" % (type(e).__name__, e))
    finally:
        if d:
            d.quit()
        rc = srv.stop()
    T.check("page_server_exits_0", rc == 0, "exit status %d" % rc)
    T.finish(os.environ.get("TEST_LABEL", "server-page"))


if __name__ == "__main__":
    main()
