"""A person in a browser: signs in, checks each page for accessibility, CSP violations
and script errors, and saves screenshots at desktop and phone sizes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.processes import ROOT

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
PASSWORD = "pass-word-123"  # the personas' password (tests/conftest.py)
# axe-core is served at this same-origin path by the browser itself (page.route), so that
# the page's strict CSP (script-src 'self') lets it run, and nothing is fetched from outside.
AXE_URL_PATH = "/__browser-tests__/axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


class Session:
    def __init__(self, browser, base_url: str, name: str, locale: str = "en-GB"):
        self.base_url = base_url
        self.name = name
        self.context = browser.new_context(viewport=DESKTOP, base_url=base_url, locale=locale)
        self.context.route(
            "**" + AXE_URL_PATH, lambda route: route.fulfill(path=str(AXE), content_type="application/javascript")
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.screenshot_dir = SCREENSHOTS
        self.problems: list[str] = []
        self.checked: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.problems.append(f"CSP violation on {self.page.url}: {text}")
        elif message.type == "error" and "WebSocket" not in text and "favicon" not in text:
            self.problems.append(f"console error on {self.page.url}: {text}")

    # People

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        page = self.page
        page.goto("/accounts/login/")
        self.check_accessibility("sign in")
        if not (SCREENSHOTS / "sign-in-desktop.png").exists():
            self.screenshot("sign-in")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"^(?!.*/accounts/login/).*$"))

    # Checks

    def check_accessibility(self, label: str) -> None:
        """axe-core on the page as it is now: no serious or critical violation."""
        page = self.page
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(url=AXE_URL_PATH)
        results = page.evaluate(
            """async (tags) => {
                const r = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
                return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary) }));
            }""",
            AXE_TAGS,
        )
        self.checked.append(f"{label} ({page.url})")
        bad = [v for v in results if v["impact"] in ("serious", "critical")]
        report = SCREENSHOTS.parent / "axe"
        report.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.name}-{label}".lower()).strip("-")
        (report / f"{slug}.json").write_text(json.dumps({"url": page.url, "violations": results}, indent=2))
        assert not bad, f"accessibility problems on '{label}' ({page.url}):\n" + json.dumps(bad, indent=2)

    def screenshot(self, name: str) -> list[Path]:
        """The page as it is now, at desktop and at phone size."""
        page = self.page
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        saved = []
        for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.evaluate("document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => r())))")
            page.wait_for_timeout(150)
            path = SCREENSHOTS / f"{name}-{size_name}.png"
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            saved.append(path)
        page.set_viewport_size(DESKTOP)
        return saved

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)

    def close(self) -> None:
        self.context.close()
