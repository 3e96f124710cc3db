"""A recipient's browser against pushgate: headless Chromium driven by
Selenium (Debian's chromium, chromium-driver and python3-selenium).

Called by tests/clients.rs:

    python browser_check.py CONFIG.json SCENARIO

CONFIG: {"base": "https://127.0.0.1:PORT", "work": a scratch directory,
         "patient": the name the page shows, "series": how many series the
         grant covers, "images": how many series have pixels (thumbnails),
         and per scenario: "code", "url", "wrong_codes" ...}

Prints one JSON object {"passed": [...], "failed": {...}, ...facts} and
exits 1 if a check failed.
"""

import json
import os
import sys
import time
import traceback
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20


class Checks:
    def __init__(self):
        self.passed = []
        self.failed = {}
        self.facts = {}

    def run(self, name, fn, *args):
        try:
            result = fn(*args)
            self.passed.append(name)
            return result
        except Exception as e:  # noqa: BLE001 - every failure is reported
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            self.failed[name] = detail[:2000]
            return None


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def browser(work, name):
    """A fresh headless Chromium with its own profile and download folder."""
    profile = Path(work) / f"profile-{name}"
    downloads = Path(work) / f"downloads-{name}"
    downloads.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
        # The test daemon's TLS certificate is self-signed (generated into
        # its data directory), which Chromium cannot be told to trust
        # without an NSS database: accept it. Everything else about TLS
        # (HTTPS only, Secure cookies) is as in production.
        "--ignore-certificate-errors",
    ):
        options.add_argument(flag)
    options.accept_insecure_certs = True
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "intl.accept_languages": "en-US,en",
        },
    )
    # the console, to see CSP violations and failed loads
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service("/usr/bin/chromedriver", log_path=str(Path(work) / f"chromedriver-{name}.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(downloads)},
    )
    driver.downloads = downloads
    return driver


def console_problems(driver, allowed=()):
    """SEVERE console entries (CSP violations, failed loads), except those
    naming one of `allowed` (e.g. the favicon pushgate does not have)."""
    try:
        entries = driver.get_log("browser")
    except Exception as e:  # noqa: BLE001
        return [f"(no browser log: {e})"]
    problems = []
    driver.console_seen = getattr(driver, "console_seen", []) + [e.get("message", "") for e in entries]
    for entry in entries:
        message = entry.get("message", "")
        if "Content Security Policy" in message:
            problems.append(message)
        elif entry.get("level") == "SEVERE" and not any(a in message for a in allowed):
            problems.append(message)
    return problems


def text(driver):
    return driver.find_element(By.TAG_NAME, "body").text


def wait_for(driver, cond, what):
    try:
        return WebDriverWait(driver, WAIT).until(lambda d: cond(d))
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"timed out waiting for {what}: {driver.current_url}\n{text(driver)[:500]}") from e


def enter_code(driver, base, code):
    driver.get(base + "/")
    field = driver.find_element(By.ID, "code")
    expect(field.get_attribute("name") == "code", "the code field")
    field.clear()
    field.send_keys(code)
    field.submit()
    # the form posts to /redeem: wait until its answer replaced this page.
    # Asking a replaced element raises, but not always StaleElementReference
    # (under load chromedriver also answers "no such execution context"),
    # which staleness_of does not take as stale: the URL decides first.
    entry = driver.current_url

    def answered(d):
        if d.current_url != entry:
            return True
        try:
            field.is_enabled()
            return False
        except Exception:  # noqa: BLE001
            return True

    wait_for(driver, answered, "an answer to the code")
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete", "the page")


def check_study_page(driver, config, checks, prefix):
    """What the holder sees: the patient, the series with loaded
    thumbnails, the ZIP button, the DICOMweb URL, the copy script."""

    def patient():
        h1 = driver.find_element(By.TAG_NAME, "h1").text
        expect(config["patient"] in h1, f"h1 {h1!r}")
        body = text(driver)
        expect(config["study_date"] in body, f"study date {config['study_date']} on the page")
        expect(config["org"] in body, "who shared it")
        if config.get("message"):
            expect(config["message"] in body, "the message")

    def series():
        items = driver.find_elements(By.CSS_SELECTOR, "ul.series li")
        expect(len(items) == config["series"], f"{len(items)} series, not {config['series']}")
        labels = [i.text for i in items]
        for modality in config["modalities"]:
            expect(any(modality in label for label in labels), f"{modality} in {labels}")
        for left_out in config.get("left_out", []):
            expect(not any(left_out in label for label in labels), f"{left_out} is listed")

    def thumbnails():
        images = driver.find_elements(By.CSS_SELECTOR, "ul.series img")
        expect(len(images) == config["images"], f"{len(images)} thumbnails, not {config['images']}")
        sizes = []
        for img in images:
            driver.execute_script("arguments[0].scrollIntoView()", img)
            wait_for(
                driver,
                lambda d: d.execute_script("return arguments[0].complete", img),
                "a thumbnail to load",
            )
            width, height = driver.execute_script(
                "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img
            )
            expect(width > 0 and height > 0, f"thumbnail {img.get_attribute('src')} did not load")
            expect(max(width, height) <= 256, f"thumbnail {width}×{height} is not a thumbnail")
            sizes.append([width, height])
        checks.facts[f"{prefix}thumbnail_sizes"] = sizes

    def download_button():
        link = driver.find_element(By.ID, "download")
        expect(link.is_displayed(), "the download button shows")
        expect(link.get_attribute("href").endswith("/download.zip"), link.get_attribute("href"))

    def dicomweb_url():
        value = driver.find_element(By.ID, "dicomweb").get_attribute("value")
        token = driver.current_url.rstrip("/").rsplit("/", 1)[1]
        expect(value == f"{config['base']}/s/{token}/dicomweb", f"DICOMweb URL {value}")
        # the one inline script ran (its hash is in the page's CSP): it
        # shows the copy button (hidden without JavaScript)
        copy = driver.find_element(By.ID, "copy")
        expect(copy.is_displayed(), "the copy button (the allowed script did not run)")

    checks.run(f"{prefix}patient_and_study", patient)
    checks.run(f"{prefix}series_list", series)
    checks.run(f"{prefix}thumbnails_loaded", thumbnails)
    checks.run(f"{prefix}download_button", download_button)
    checks.run(f"{prefix}dicomweb_url_and_script", dicomweb_url)


def download(driver, checks):
    """Clicks the ZIP button and waits for the finished file."""

    def click_and_wait():
        driver.find_element(By.ID, "download").click()
        deadline = time.time() + 60
        while time.time() < deadline:
            done = [p for p in driver.downloads.iterdir() if not p.name.endswith(".crdownload")]
            partial = [p for p in driver.downloads.iterdir() if p.name.endswith(".crdownload")]
            if done and not partial:
                expect(len(done) == 1, f"downloads: {done}")
                expect(done[0].suffix == ".zip", f"file name {done[0].name}")
                return str(done[0])
            time.sleep(0.2)
        raise AssertionError(f"no finished download in {driver.downloads}: {list(driver.downloads.iterdir())}")

    path = checks.run("download_zip", click_and_wait)
    if path:
        checks.facts["zip"] = path


def study_page_and_download(driver, config, checks):
    """On the study page: everything it shows, the ZIP, the console."""
    check_study_page(driver, config, checks, "")
    download(driver, checks)
    checks.facts["study_url"] = driver.current_url
    problems = console_problems(driver, allowed=("favicon.ico",))
    checks.facts["console"] = problems
    checks.facts["console_seen"] = driver.console_seen
    driver.save_screenshot(str(Path(config["work"]) / "study-page.png"))
    checks.run("no_console_errors", lambda: expect(not problems, f"console: {problems}"))


def code_flow(config, checks):
    """The code from a letter: entered on /, it leads to the study page; the
    ZIP button downloads the study."""
    driver = browser(config["work"], "code")
    try:
        def redeem():
            enter_code(driver, config["base"], config["code"])
            wait_for(driver, lambda d: "/s/" in d.current_url, "the study page")
            expect(driver.find_elements(By.ID, "download"), f"the study page, not {text(driver)[:300]}")

        checks.run("code_redeemed", redeem)
        study_page_and_download(driver, config, checks)
    finally:
        driver.quit()


def holder_cookie(config, checks):
    """A browser that already holds the link: the holder cookie pushgate
    sets on binding (here from a binding the test made as a program),
    then the study page and the ZIP as in the code flow."""
    driver = browser(config["work"], "holder")
    try:
        url = config["url"]
        token = url.rsplit("/", 1)[1]

        def open_as_holder():
            driver.get(config["base"] + "/")
            driver.add_cookie(
                {
                    "name": "__Secure-pushgate_holder",
                    "value": config["holder"],
                    "path": f"/s/{token}",
                    "secure": True,
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            )
            driver.get(url)
            wait_for(driver, lambda d: d.find_elements(By.ID, "download"), "the study page")

        checks.run("holder_opens_study_page", open_as_holder)
        study_page_and_download(driver, config, checks)
    finally:
        driver.quit()


def link_flow(config, checks):
    """The link a clinician receives: opening it only offers to bind (a mail
    scanner fetching it takes nothing), the first to press Open holds it,
    and anyone else then gets the neutral answer."""
    first = browser(config["work"], "link-a")
    second = browser(config["work"], "link-b")
    try:
        url = config["url"]
        token = url.rsplit("/", 1)[1]

        def offer(driver):
            driver.get(url)
            button = driver.find_element(By.CSS_SELECTOR, f"form[action='/s/{token}'] button")
            expect(button.is_displayed(), "an Open button")
            expect(config["patient"] not in text(driver), "the offer shows no patient")
            expect(not driver.find_elements(By.ID, "download"), "no download before binding")

        checks.run("link_offers_binding_a", offer, first)
        checks.run("link_offers_binding_b", offer, second)

        def bind_second():
            second.find_element(By.CSS_SELECTOR, f"form[action='/s/{token}'] button").click()
            wait_for(second, lambda d: d.find_elements(By.ID, "download"), "the study page after Open")
            expect(second.current_url == url, f"back on the link: {second.current_url}")

        checks.run("link_bound_by_open", bind_second)
        check_study_page(second, config, checks, "link_")

        def first_is_refused():
            button = first.find_element(By.CSS_SELECTOR, f"form[action='/s/{token}'] button")
            button.click()
            # the answer replaces this page: wait until it has (the old page
            # is also complete and on /s/, and reading it as it goes away
            # raised a stale-element error once)
            wait_for(first, expected_conditions.staleness_of(button), "the offer page to go")
            wait_for(first, lambda d: d.execute_script("return document.readyState") == "complete"
                     and "/s/" in d.current_url, "an answer")
            body = text(first)
            expect("Not available" in body, f"the neutral page, not {body[:300]}")
            expect(config["patient"] not in body, "no patient for the second opener")
            first.get(url)
            expect("Not available" in text(first), "opening it again: neutral")
            checks.facts["neutral_text"] = text(first)

        checks.run("link_refused_to_second_opener", first_is_refused)

        def holder_comes_back():
            second.get(url)
            wait_for(second, lambda d: d.find_elements(By.ID, "download"), "the study page again")
            expect(config["patient"] in second.find_element(By.TAG_NAME, "h1").text, "same page")

        checks.run("link_holder_returns", holder_comes_back)
        problems = console_problems(second, allowed=("favicon.ico",))
        checks.run("link_no_console_errors", lambda: expect(not problems, f"console: {problems}"))
    finally:
        first.quit()
        second.quit()


def wrong_codes(config, checks):
    """Codes that lead nowhere: a wrong one, a revoked one and one already
    redeemed by someone else all get one and the same page, which shows an
    error and names no patient; a typo is caught as a typo."""
    driver = browser(config["work"], "wrong")
    try:
        answers = {}

        def answer(kind, code):
            enter_code(driver, config["base"], code)
            body = text(driver)
            expect(config["patient"] not in body, f"{kind}: a patient shown")
            expect("/s/" not in driver.current_url, f"{kind}: led to {driver.current_url}")
            expect(not driver.find_elements(By.ID, "download"), f"{kind}: a study page")
            answers[kind] = (driver.title, body)

        for kind, code in config["wrong_codes"].items():
            checks.run(f"refused_{kind}", answer, kind, code)

        def all_alike():
            distinct = {v for v in answers.values()}
            expect(len(answers) == len(config["wrong_codes"]), "every code answered")
            expect(len(distinct) == 1, f"different answers: {answers}")
            title, body = distinct.pop()
            expect("not (or no longer) valid" in body, f"an error message: {body[:300]}")
            checks.facts["refusal_text"] = body

        checks.run("refusals_identical", all_alike)

        def typo():
            enter_code(driver, config["base"], config["typo_code"])
            errors = driver.find_elements(By.CSS_SELECTOR, "p.error[role=alert]")
            expect(errors and "typo" in errors[0].text, f"a typo message: {text(driver)[:300]}")
            expect(driver.find_elements(By.ID, "code"), "the code can be entered again")

        checks.run("typo_reported", typo)
        # the refusals themselves are 404/400 documents; nothing else may
        # fail, and there must be no CSP violation
        problems = [
            p
            for p in console_problems(driver, allowed=("favicon.ico",))
            if not ("/redeem" in p and ("404" in p or "400" in p))
        ]
        checks.facts["console"] = problems
        checks.run("wrong_no_console_errors", lambda: expect(not problems, f"console: {problems}"))
    finally:
        driver.quit()


SCENARIOS = {"code": code_flow, "holder": holder_cookie, "link": link_flow, "wrong": wrong_codes}


def main():
    config = json.loads(Path(sys.argv[1]).read_text())
    checks = Checks()
    SCENARIOS[sys.argv[2]](config, checks)
    out = {"passed": checks.passed, "failed": checks.failed}
    out.update(checks.facts)
    print(json.dumps(out))
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    os.environ.setdefault("HOME", "/tmp")
    main()
