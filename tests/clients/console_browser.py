"""A member of staff's browser in the console: headless Chromium driven by
Selenium, by clicks, with axe-core (npm) checking every page for
accessibility problems. Reuses browser_check.py's browser and checks.

Called by tests/console_browser.rs:

    python console_browser.py CONFIG.json SCENARIO

CONFIG: {"base": "https://127.0.0.1:CONSOLE_PORT", "work": scratch dir,
         "enrol_url": a fresh admin's enrolment link, "name": its account,
         "password": the password to choose, "axe": path of axe.min.js}

Prints {"passed": [...], "failed": {...}, "axe": {page: [violations]}}.
"""

import json
import subprocess
import sys
import time

from selenium.webdriver.common.by import By
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


def accounts(config):
    checks = Checks()
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
        driver.find_element(By.ID, "name").send_keys(config["name"])
        driver.find_element(By.ID, "password").send_keys("not the password at all")
        driver.find_element(By.ID, "code").send_keys("123456")
        driver.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
        alert = wait_for(driver, "[role=alert]")
        expect("klopt niet" in alert.text or "not right" in alert.text, alert.text)
        axe(driver, config, report, "login-failed")
        shot(driver, config, "login-failed")
        driver.find_element(By.ID, "password").send_keys(config["password"])
        driver.find_element(By.ID, "code").send_keys(totp(state["secret"], 1))
        driver.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
        # back where the login page was asked from
        WebDriverWait(driver, WAIT).until(lambda d: d.current_url.endswith("/console/users"))

    def no_csp_violation():
        problems = console_problems(driver, allowed=(
            "favicon.ico",
            # a failed login is answered 401 on purpose
            "/console/login - Failed to load resource: the server responded with a status of 401",
        ))
        expect(not problems, f"browser console: {problems}")

    for name, fn in [
        ("enrol", enrol),
        ("users", users),
        ("language", language),
        ("logout", logout),
        ("wrong_then_right", wrong_then_right),
        ("no_csp_violation", no_csp_violation),
    ]:
        checks.run(name, fn)
        if checks.failed:
            break
    driver.quit()
    return checks, report


def main():
    config = json.load(open(sys.argv[1], encoding="utf-8"))
    scenario = sys.argv[2]
    checks, report = {"accounts": accounts}[scenario](config)
    print(json.dumps({"passed": checks.passed, "failed": checks.failed, **report}))
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
