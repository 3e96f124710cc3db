"""A member of staff's browser in the console: headless Chromium driven by
Selenium, by clicks, with axe-core (npm) checking every page for
accessibility problems. Reuses browser_check.py's browser and checks.

Called by tests/console_browser.rs:

    python console_browser.py CONFIG.json SCENARIO

SCENARIO accounts: CONFIG {"base": "https://127.0.0.1:CONSOLE_PORT",
  "work": scratch dir, "enrol_url": a fresh admin's enrolment link,
  "name": its account, "password": the password to choose,
  "axe": path of axe.min.js}

SCENARIO share: CONFIG as above without enrol_url, plus "secret" (the
  enrolled account's TOTP key), "patient_id" (to search for),
  "patient_name" (as the DICOM file has it, hostile), "untick" (the
  modality of a series to untick), "admin" ({"name", "secret"}: an
  applicatiebeheerder's account, same password).

SCENARIO live: CONFIG {"base", "work", "name", "password", "secret"}: a
  study still arriving, so the studies page reloads itself.

Prints {"passed": [...], "failed": {...}, "axe": {page: [violations]}}
(share: plus "link", "code", "sheet_pages", "leaving").
"""

import base64
import json
import re
import subprocess
import sys
import time
from urllib.parse import urlparse

from selenium.webdriver.common.by import By
from selenium.webdriver.common.print_page_options import PrintOptions
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from browser_check import WAIT, Checks, browser, console_problems, expect

SERIOUS = ("serious", "critical")


def totp(secret, steps=0):
    at = int(time.time()) + 30 * steps
    return subprocess.check_output(
        ["oathtool", "--totp", "-b", "--now", f"@{at}", secret], text=True
    ).strip()


def axe(driver, config, report, page):
    """Runs axe-core in the page; serious and critical violations fail."""
    with open(config["axe"], encoding="utf-8") as f:
        source = f.read()
    driver.execute_script(source)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));"
    )
    report.setdefault("axe", {})[page] = result
    serious = [v for v in result if v.get("impact") in SERIOUS]
    expect(not serious, f"{page}: {json.dumps(serious)}")


def shot(driver, config, name):
    driver.save_screenshot(f"{config['work']}/console-{name}.png")


def wait_for(driver, css):
    return WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def fill_login(driver, name, password, code):
    """Types into the login form and sends it."""
    if name is not None:
        driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "code").send_keys(code)
    driver.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()


def run_steps(driver, steps, allowed):
    """Runs each step in turn until one fails, then checks the browser's
    console for CSP violations and failed loads (except `allowed`)."""
    checks = Checks()

    def no_csp_violation():
        problems = console_problems(driver, allowed=("favicon.ico",) + allowed)
        expect(not problems, f"browser console: {problems}")

    for name, fn in steps + [("no_csp_violation", no_csp_violation)]:
        checks.run(name, fn)
        if checks.failed:
            break
    driver.quit()
    return checks


def click_through(driver, element, css):
    """Clicks `element` (a link or a submit button), waits for the page it
    leads to, and returns that page's element at `css`."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, WAIT).until(staleness_of(old))
    return wait_for(driver, css)


def accounts(config):
    report = {}
    driver = browser(config["work"], "console")
    driver.set_script_timeout(WAIT)
    base = config["base"]
    state = {}

    def enrol():
        driver.get(config["enrol_url"])
        axe(driver, config, report, "enrol")
        shot(driver, config, "enrol")
        secret = driver.find_element(By.ID, "secret").text.replace(" ", "")
        expect(len(secret) == 32, f"a 160-bit key in base32: {secret!r}")
        qr = driver.find_element(By.CSS_SELECTOR, "img.qr")
        expect(qr.get_attribute("naturalWidth") not in (None, "0"), "the QR code is drawn")
        state["secret"] = secret
        driver.find_element(By.ID, "password").send_keys(config["password"])
        driver.find_element(By.ID, "repeat").send_keys(config["password"])
        driver.find_element(By.ID, "code").send_keys(totp(secret))
        driver.find_element(By.CSS_SELECTOR, "form.enrol button[type=submit]").click()
        WebDriverWait(driver, WAIT).until(lambda d: "/console/enrol/" not in d.current_url)
        expect(driver.get_cookie("__Host-pushgate_console") is not None, "logged in")

    def users():
        driver.get(base + "/console/users?lang=en")
        axe(driver, config, report, "users")
        driver.find_element(By.ID, "name").send_keys("bert")
        driver.find_element(By.ID, "display_name").send_keys('Bert "<b>" Laborant')
        driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
        link = wait_for(driver, "#enrol-link")
        expect("/console/enrol/" in link.text, link.text)
        cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "tbody td")]
        expect('Bert "<b>" Laborant' in cells, f"the name shows as typed: {cells}")
        copy = driver.find_element(By.CSS_SELECTOR, "button[data-copy]")
        expect(copy.is_displayed(), "the copy button appears with JavaScript")
        axe(driver, config, report, "users-made")
        shot(driver, config, "users")

    def language():
        driver.find_element(By.LINK_TEXT, "Nederlands").click()
        WebDriverWait(driver, WAIT).until(
            lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl"
        )
        expect(driver.find_element(By.TAG_NAME, "h1").text == "Gebruikers", "Dutch heading")
        driver.get(base + "/console/users")
        expect(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl", "the choice stays")

    def logout():
        driver.find_element(By.CSS_SELECTOR, "header form button[type=submit]").click()
        WebDriverWait(driver, WAIT).until(lambda d: "/console/login" in d.current_url)
        driver.get(base + "/console/users")
        expect("/console/login" in driver.current_url, "logged out: back to the login page")
        axe(driver, config, report, "login")

    def wrong_then_right():
        fill_login(driver, config["name"], "not the password at all", "123456")
        alert = wait_for(driver, "[role=alert]")
        expect("klopt niet" in alert.text or "not right" in alert.text, alert.text)
        axe(driver, config, report, "login-failed")
        shot(driver, config, "login-failed")
        # the name stays filled in after a failed login
        fill_login(driver, None, config["password"], totp(state["secret"], 1))
        # back where the login page was asked from
        WebDriverWait(driver, WAIT).until(lambda d: d.current_url.endswith("/console/users"))

    checks = run_steps(driver, [
        ("enrol", enrol),
        ("users", users),
        ("language", language),
        ("logout", logout),
        ("wrong_then_right", wrong_then_right),
    ], allowed=(
        # a failed login is answered 401 on purpose
        "/console/login - Failed to load resource: the server responded with a status of 401",
    ))
    return checks, report


def leaving_now(driver):
    """The live summary as shown: (series, images, bytes text)."""
    return (
        int(driver.find_element(By.ID, "leaving-series").text),
        int(driver.find_element(By.ID, "leaving-images").text),
        driver.find_element(By.ID, "leaving-bytes").text,
    )


def ticked(driver):
    """(series, images) as the ticked boxes add up."""
    boxes = [b for b in driver.find_elements(By.CSS_SELECTOR, "input[name=series]") if b.is_selected()]
    return len(boxes), sum(int(b.get_attribute("data-instances")) for b in boxes)


def share(config):
    """Log in, find the study, untick a series, read the summary, share,
    print the referral sheet, revoke: by clicks, as a laborant would."""
    report = {}
    driver = browser(config["work"], "share")
    driver.set_script_timeout(WAIT)
    base = config["base"]

    def log_in():
        driver.get(base + "/console/studies?lang=en")
        WebDriverWait(driver, WAIT).until(lambda d: "/console/login" in d.current_url)
        fill_login(driver, config["name"], config["password"], totp(config["secret"], 1))
        # the login page's own address names /console/studies as ?next=
        WebDriverWait(driver, WAIT).until(lambda d: urlparse(d.current_url).path == "/console/studies")

    def find():
        field = driver.find_element(By.CSS_SELECTOR, "form.search input[name=patient_id]")
        field.send_keys(config["patient_id"])
        old = driver.find_element(By.TAG_NAME, "html")
        field.submit()
        WebDriverWait(driver, WAIT).until(staleness_of(old))
        wait_for(driver, "table tbody tr")
        rows = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
        expect(len(rows) == 1, f"one study for the patient ID: {len(rows)} rows")
        shown = rows[0].text
        # the hostile name shows as the text it is, and ran no script
        expect("<script>alert(1)</script>" in shown, f"the name as text: {shown!r}")
        expect(driver.execute_script("return document.querySelectorAll('tbody script').length") == 0,
               "no script element made from the name")
        axe(driver, config, report, "studies-found")
        shot(driver, config, "studies-found")
        click_through(driver, rows[0].find_element(By.CSS_SELECTOR, "a.button[href^='/console/share/']"), "form.share")

    def untick():
        boxes = driver.find_elements(By.CSS_SELECTOR, "input[name=series]")
        by_modality = {b.get_attribute("data-modality"): b for b in boxes}
        expect(not by_modality["PR"].is_selected(), "presentation states unticked by default")
        expect(all(b.is_selected() for m, b in by_modality.items() if m != "PR"),
               "every other series ticked by default")
        before = leaving_now(driver)
        expect(before[:2] == ticked(driver), f"summary {before} matches the ticks {ticked(driver)}")
        target = by_modality[config["untick"]]
        driver.find_element(By.CSS_SELECTOR, f"label[for='{target.get_attribute('id')}']").click()
        expect(not target.is_selected(), "unticked by clicking its label")
        WebDriverWait(driver, WAIT).until(lambda d: leaving_now(d)[:2] == ticked(d))
        after = leaving_now(driver)
        expect(after[0] == before[0] - 1, f"one series fewer: {before} -> {after}")
        expect(after[1] < before[1], f"fewer images: {before} -> {after}")
        summary = driver.find_element(By.ID, "leaving").text
        expect(config["patient_name_shown"] in summary, f"whose images: {summary!r}")
        report["leaving"] = {"series": after[0], "images": after[1], "bytes": after[2]}
        axe(driver, config, report, "share-form")
        shot(driver, config, "share-form")

    def submit():
        driver.find_element(By.CSS_SELECTOR, "input[name=legal_basis][value=referral]").click()
        driver.find_element(By.CSS_SELECTOR, "textarea[name=message]").send_keys("Graag beoordelen, spoed")
        code = click_through(driver, driver.find_element(By.CSS_SELECTOR, "form.share button[type=submit]"), "#share-code")
        link = driver.find_element(By.ID, "share-link").get_attribute("value")
        expect(link.startswith("https://"), link)
        report["link"], report["code"] = link, code.text
        expect(driver.find_element(By.CSS_SELECTOR, "figure.qr img").get_attribute("naturalWidth") != "0",
               "the QR code of the link is drawn")
        copy = driver.find_element(By.CSS_SELECTOR, "button[data-copy=share-code]")
        expect(copy.is_displayed(), "copy buttons appear with JavaScript")
        axe(driver, config, report, "share-result")
        shot(driver, config, "share-result")

    def print_sheet():
        sheet = click_through(driver, driver.find_element(By.CSS_SELECTOR, "a.button[href$='/sheet']"), "article.sheet")
        expect(report["code"] in sheet.text, "the code is on the sheet")
        expect(config["patient_name_shown"] in sheet.text, "whose images: on the sheet")
        axe(driver, config, report, "referral-sheet")
        shot(driver, config, "referral-sheet")
        # as the printer sees it: the print stylesheet, no menu, no buttons
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        expect(not driver.find_element(By.CSS_SELECTOR, "header").is_displayed(), "no menu on paper")
        expect(not any(b.is_displayed() for b in driver.find_elements(By.CSS_SELECTOR, "button, a.button")),
               "no buttons on paper")
        shot(driver, config, "referral-sheet-print")
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        options = PrintOptions()
        options.page_width, options.page_height = 21.0, 29.7
        pdf = base64.b64decode(driver.print_page(options))
        with open(f"{config['work']}/referral-sheet.pdf", "wb") as f:
            f.write(pdf)
        pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
        report["sheet_pages"] = pages
        expect(pages == 1, f"the sheet prints on one A4 page, not {pages}")

    def revoke():
        first = click_through(driver, driver.find_element(By.CSS_SELECTOR, "nav a[href='/console/shares']"), "a.open")
        reason = click_through(driver, first, "textarea#reason")
        reason.send_keys("Verkeerde patiënt gekozen")
        button = driver.find_element(By.CSS_SELECTOR, "form.revoke button[type=submit]")
        click_through(driver, button, "form.revoke input[name=confirm]")
        expect(driver.find_element(By.ID, "reason").get_attribute("value") == "Verkeerde patiënt gekozen",
               "the reason carried to the confirmation")
        axe(driver, config, report, "revoke-confirm")
        shot(driver, config, "revoke-confirm")
        button = driver.find_element(By.CSS_SELECTOR, "form.revoke button[type=submit]")
        ok = click_through(driver, button, "p.ok")
        expect("Revoked" in ok.text or "Ingetrokken" in ok.text, ok.text)
        expect(not driver.find_elements(By.CSS_SELECTOR, "form.revoke"), "no revoke form on a revoked share")
        axe(driver, config, report, "revoked")
        shot(driver, config, "revoked")

    def admin_pages():
        """Every other section, as the applicatiebeheerder sees it after
        this share: axe on each, a screenshot of each."""
        click_through(driver, driver.find_element(By.CSS_SELECTOR, "header form button[type=submit]"), "#name")
        WebDriverWait(driver, WAIT).until(lambda d: "/console/login" in d.current_url)
        admin = config["admin"]
        old = driver.find_element(By.TAG_NAME, "html")
        fill_login(driver, admin["name"], config["password"], totp(admin["secret"], 1))
        WebDriverWait(driver, WAIT).until(staleness_of(old))
        for page, path, must in [
            ("shares", "/console/shares", "laborant"),
            ("outbox", "/console/outbox", None),
            ("received", "/console/received", None),
            ("audit", "/console/audit", "laborant"),
            ("patient-report", "/console/audit/patient?q=" + config["patient_id"], "laborant"),
            ("users", "/console/users", "laborant"),
            ("settings", "/console/settings", "console and admin API"),
        ]:
            driver.get(base + path)
            h1 = wait_for(driver, "h1")
            expect(h1.text.strip() != "", f"{page}: a heading")
            if must:
                expect(must in driver.find_element(By.TAG_NAME, "main").text,
                       f"{page}: {must!r} on the page")
            axe(driver, config, report, "admin-" + page)
            shot(driver, config, "admin-" + page)

    checks = run_steps(driver, [
        ("log_in", log_in),
        ("find", find),
        ("untick", untick),
        ("share", submit),
        ("print", print_sheet),
        ("revoke", revoke),
        ("admin_pages", admin_pages),
    ], allowed=())
    return checks, report


def live(config):
    """The studies page while a study is still arriving: it reloads itself
    asking with ?auto=1 (which the server does not count as the person's
    activity), gives the address bar back without it, and does not reload
    while the person types in the search."""
    report = {}
    driver = browser(config["work"], "live")
    base = config["base"]

    def log_in():
        driver.get(base + "/console/studies?lang=en")
        WebDriverWait(driver, WAIT).until(lambda d: "/console/login" in d.current_url)
        fill_login(driver, config["name"], config["password"], totp(config["secret"], 1))
        WebDriverWait(driver, WAIT).until(lambda d: urlparse(d.current_url).path == "/console/studies")
        wait_for(driver, "table tbody tr")

    def reloads_quietly():
        expect(driver.find_elements(By.CSS_SELECTOR, 'meta[name="pushgate-refresh"]'),
               "a page with a study arriving asks to be reloaded")
        old = driver.find_element(By.TAG_NAME, "html")
        WebDriverWait(driver, 15).until(staleness_of(old))
        wait_for(driver, "table tbody tr")
        asked = driver.execute_script("return performance.getEntriesByType('navigation')[0].name")
        report["reload_asked"] = asked
        expect("auto=1" in asked, f"the reload asks with ?auto=1: {asked}")
        expect("auto" not in driver.current_url, f"the address bar without it: {driver.current_url}")

    def not_while_typing():
        field = driver.find_element(By.CSS_SELECTOR, "form.search input[name=patient_id]")
        field.click()
        field.send_keys("12")
        old = driver.find_element(By.TAG_NAME, "html")
        time.sleep(8)
        still = driver.find_element(By.TAG_NAME, "html") == old
        expect(still, "no reload while the person types")
        expect(field.get_attribute("value") == "12", "what she typed is still there")

    checks = run_steps(driver, [
        ("log_in", log_in),
        ("reloads_quietly", reloads_quietly),
        ("not_while_typing", not_while_typing),
    ], allowed=())
    return checks, report


def main():
    config = json.load(open(sys.argv[1], encoding="utf-8"))
    scenario = sys.argv[2]
    checks, report = {"accounts": accounts, "share": share, "live": live}[scenario](config)
    print(json.dumps({"passed": checks.passed, "failed": checks.failed, **report}))
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
