"""The web workspace in a real browser (Playwright driving Debian's chromium) against a real ``planner serve``:
sign-in, the map, a library scenario in the form, a field error, save, a real run watched to the end, results,
the workbook download, a comparison, the language switch, a viewer key and a wrong key — and not one request
outside the server's own origin on any page, ``/docs`` and ``/redoc`` included."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from servers import free_port, wait_healthy  # tests/servers.py

from api.db import create_key

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = os.environ.get("PLANNER_UI_SCREENSHOTS")  # a folder: the flow also saves docs/ui.md's pictures

sync_api = pytest.importorskip("playwright.sync_api")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real server on a fresh SQLite database, with a planner and a viewer key."""
    tmp = tmp_path_factory.mktemp("web")
    db = tmp / "web.db"
    url = f"sqlite:///{db}"
    _, planner_key = create_key("planner", url=url)
    _, viewer_key = create_key("viewer", url=url)
    port = free_port()
    env = {**os.environ, "PLANNER_DB": str(db), "PLANNER_RUNS_DIR": str(tmp / "runs")}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "planner.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, 30)
    except RuntimeError:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    yield {"base": base, "planner": planner_key, "viewer": viewer_key, "url": url}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]  # root in CI, small /dev/shm
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


class Page:
    """A browser page at 1366×768 that records every request's origin."""

    def __init__(self, browser, base: str):
        self.base = base
        self.ctx = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
        self.page = self.ctx.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.set_default_timeout(30_000)

    def outside(self) -> list[str]:
        """Requests that left the server's origin (data: and blob: URLs stay in the page)."""
        own = urlsplit(self.base).netloc
        return [u for u in self.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                and urlsplit(u).netloc != own]

    def shot(self, name: str, full_page: bool = False) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.page.wait_for_timeout(800)  # let Leaflet's zoom and fade animations settle
            self.page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=full_page)

    def sign_in(self, key: str) -> None:
        self.page.goto(self.base + "/")
        self.page.fill("#signin-key", key)
        self.page.click("#signin-form button[type=submit]")


def _wait_run(pg, seen: list[str], limit_s: float = 240) -> str:
    """Watch the run page until done; collect each distinct progress text shown; return the final status."""
    page = pg.page
    end = time.monotonic() + limit_s
    status = ""
    while time.monotonic() < end:
        text = page.text_content("#run-progress") or ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        status = page.get_attribute("#run-status", "data-status") or ""
        if status and status not in ("queued", "running"):
            return status
        page.wait_for_timeout(250)
    return status


def _click_in_view(page, map_sel: str, sel: str) -> None:
    """Click the first feature ``sel`` of the map ``map_sel`` whose middle is in view: the click goes to that
    feature's own element at its middle (not to what another layer draws over it)."""
    view = page.locator(map_sel).bounding_box()
    for el in page.locator(f"{map_sel} {sel}").all():
        b = el.bounding_box()
        if not b:
            continue
        x, y = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        inside_x = view["x"] + 60 < x < view["x"] + view["width"] - 360  # clear of the zoom buttons and legend
        if inside_x and view["y"] + 40 < y < view["y"] + view["height"] - 40:
            el.dispatch_event("click", {"clientX": x, "clientY": y})
            return
    raise AssertionError(f"no {sel} in view on {map_sel}")


TRADE_RING = "#6a3d9a"
"""The result map's colour of a border crossing's trade ring (api/static/js/app.js, TRADE_COLOURS)."""


def _partners_and_trade_pictures(pg, server) -> None:
    """docs/ui.md's pictures of the partners' regions (the map over Kazakhstan, potato production) and of a
    Kazakh run's trade at its crossings (a popup with tonnes by group in and out)."""
    import yaml

    page = pg.page
    body = yaml.safe_load((ROOT / "scenarios" / "kazakhstan_pilots.yaml").read_text(encoding="utf-8"))
    body.pop("outputs", None)
    body["solver"] = {"time_limit_s": 60, "gap": 0.02}
    run = httpx.post(f"{server['base']}/runs", json={"scenario": body}, headers={"X-API-Key": server["planner"]})
    assert run.status_code == 202, run.text
    page.goto(f"{server['base']}/#map")
    page.reload()  # a fresh map view (the key stays in the tab's sessionStorage)
    page.wait_for_selector("#map[data-ready='1']")
    page.select_option("#indicator", "production")
    page.select_option("#commodity", "potatoes")
    page.wait_for_selector(".legend:has-text('картофель')")
    page.click("#map .leaflet-control-zoom-out")
    page.wait_for_timeout(500)
    page.mouse.move(900, 450)
    page.mouse.down()
    page.mouse.move(500, 520, steps=10)
    page.mouse.up()
    page.wait_for_timeout(500)
    pg.shot("map_partners")
    page.goto(f"{server['base']}/#run/{run.json()['id']}")
    assert _wait_run(pg, [], limit_s=300) == "succeeded"
    page.wait_for_selector("#run-result[data-ready='1']")
    rings = page.locator(f"#run-map path[stroke='{TRADE_RING}']")
    assert rings.count() >= 4  # crossings into Russia, Uzbekistan, Kyrgyzstan and China
    _click_in_view(page, "#run-map", f"path[stroke='{TRADE_RING}']")  # the largest crossing's own ring
    popup = page.wait_for_selector("#run-map .leaflet-popup-content").text_content()
    assert "пункт пропуска" in popup and "ввоз" in popup and "т/год" in popup
    page.locator("#run-map").scroll_into_view_if_needed()
    pg.shot("result_trade")


def test_planner_flow_map_scenario_run_results_compare_language(server, browser, tmp_path, cross_border_runs):
    pg = Page(browser, server["base"])
    page = pg.page
    # a wrong key gets a clear message and no way in
    pg.sign_in("orc_wrong")
    page.wait_for_selector("#signin-error:has-text('Ключ не принят')")
    assert page.is_hidden("#nav")
    # sign in: the map with shaded regions, legend, scale bar, corridors, crossings, candidates, existing centres
    pg.sign_in(server["planner"])
    page.wait_for_selector("#map[data-ready='1']")
    assert page.evaluate("sessionStorage.getItem('orc_key')") == server["planner"]
    assert server["planner"] not in page.url
    assert page.locator("#map path.leaflet-interactive").count() > 80 + 100  # regions and corridor segments
    assert page.locator(".leaflet-control-scale").count() == 1
    legend = page.text_content(".legend")
    assert "Доля сельского хозяйства в занятости" in legend and "приблизительно" in legend
    page.select_option("#indicator", "production")
    page.select_option("#commodity", "grain")
    page.wait_for_selector(".legend:has-text('зерно')")
    pg.shot("map")
    # a popup with Russian and English names, a figure with its unit, year and source
    _click_in_view(page, "#map", "path.leaflet-interactive[fill='#1b7837']")  # a region of the fifth class
    popup = page.wait_for_selector(".leaflet-popup-content").text_content()
    assert "тыс. т" in popup or "нет данных" in popup
    page.select_option("#indicator", "surplus")
    page.wait_for_selector(".legend:has-text('Избыток')")
    page.wait_for_selector(".leaflet-popup", state="detached", timeout=3000)  # the old indicator's popup goes
    pg.shot("map_surplus")

    # scenarios: pick a library scenario, change a switch, see the field error the API names, save as
    page.click("a[href='#scenarios']")
    page.wait_for_selector("[data-lib='ncfd_expansion']")
    # a duty outside the admissible range is shown in its own cell of the outside markets' table
    page.click("[data-lib='eaeu_tariff_shock']")
    page.wait_for_selector("#form-source:has-text('eaeu_tariff_shock')")
    duty = page.locator("#exit-table tr:has-text('az_baku') input[name$=':tariff_export_pct']")
    assert duty.input_value() == "30"
    duty.fill("900")
    page.click("#save-as")
    cell = page.wait_for_selector("#exit-table tr:has-text('az_baku') td.invalid .field-error:not(:empty)")
    assert "500" in cell.text_content()
    assert "не больше 500" in cell.text_content()  # the page is Russian: the API's msg_ru is shown
    page.click("[data-lib='ncfd_expansion']")
    page.wait_for_selector("#form-source:has-text('ncfd_expansion')")
    page.uncheck("input[name=group][value=fruit_berries]")
    page.fill("input[name=p]", "-1")
    page.fill("#save-as-name", "web_small")
    page.click("#save-as")
    err = page.wait_for_selector(".field[data-loc='objective.p'] .field-error:not(:empty)")
    assert "0" in err.text_content()
    assert page.text_content(".field[data-loc='name'] .field-error") == ""
    page.fill("input[name=p]", "6")
    page.fill("input[name=time_limit_s]", "60")
    page.click("#save-as")
    page.wait_for_selector("#form-status:has-text('web_small')")
    page.wait_for_selector("#stored-list a:has-text('web_small')")
    page.click("#show-yaml")
    yaml_text = page.wait_for_selector("#yaml-view:has-text('web_small')").text_content()
    assert "vegetables" in yaml_text and "potatoes" in yaml_text and "fruit_berries" not in yaml_text

    # run it and watch the progress to the end; the bar runs against the run's own time limit (60 s)
    page.click("#run-now")
    page.wait_for_selector("#view-run:not([hidden])")
    page.wait_for_selector("#run-bar[data-limit='60']", state="attached")
    seen: list[str] = []
    assert _wait_run(pg, seen) == "succeeded", seen
    assert len(set(seen)) >= 3, seen  # at least two updates before "done"
    page.wait_for_selector("#run-result[data-ready='1']")
    run_id = page.url.rsplit("/", 1)[1]
    stored = httpx.get(f"{server['base']}/runs/{run_id}", headers={"X-API-Key": server["viewer"]}).json()
    assert stored["scenario_id"] is not None  # the saved scenario ran as itself, by id
    assert page.locator("#centres-table tr").count() == 1 + 6
    assert page.locator("#run-map path.leaflet-interactive").count() >= 6
    assert page.locator("#stages-table tr").count() >= 1 + 3  # transport, wholesale storage, retail at least
    for chart in ("loss", "price"):  # loss reduction and price change of the two groups
        assert page.locator(f"#charts svg.chart[data-chart='{chart}'] rect").count() == 2
    costs = page.locator("#costs-table tr").count() - 1
    assert page.locator("#charts svg.chart[data-chart='costs'] rect").count() == costs
    social = page.locator("#charts svg.chart[data-chart='social']")
    assert "Чистая общ. выгода" in social.text_content() and "ЧДД инвестора" in social.text_content()
    assert page.locator("#prices-table tr").count() == 1 + 14  # potatoes and vegetables in the seven NCFD regions
    # the investor's view per centre: capital, public support, NPV without and with the preferential loan, payback
    assert page.locator("#investor-table tr[data-site]").count() == 6
    head = page.text_content("#investor-table tr:first-child")
    assert "ЧДД инвестора, млн руб." in head and "ЧДД с льготным кредитом" in head and "Окупаемость, лет" in head
    assert "льготный кредит" in page.text_content("#investor-note")
    # the Russian page shows no English solver status, size or store-type word
    assert page.text_content("#headline [data-status]") == "оптимальное решение"
    english = re.compile(
        r"\b(optimal|feasible|infeasible|time_limit\w*|existing|small|medium|large|store|dc|elevator)\b")
    for table in ("#headline", "#centres-table", "#investor-table", "#costs-table", "#groups-table"):
        assert not english.search(page.inner_text(table)), (table, english.search(page.inner_text(table)))
    # flows by commodity: a colour and a layer per group, and the flows in the legend with a width scale
    for group, colour, name in (("potatoes", "#d95f02", "картофель"), ("vegetables", "#7570b3", "овощи")):
        assert page.locator(f"#run-map path.flow-{group}[stroke='{colour}']").count() >= 1
        assert page.locator(f"#run-map .leaflet-control-layers .flow-overlay[data-group='{group}']").count() == 1
        assert name in page.text_content("#run-map .flows-legend")
    assert "т/год" in page.text_content("#run-map .flows-legend")
    # the run's trade is a layer of the result map (the rest of Russia buys the scope's surplus at Moscow)
    assert page.locator("#run-map .leaflet-control-layers-overlays:has-text('Ввоз и вывоз')").count() == 1
    assert page.locator("#run-map path[stroke='#7f7f7f']").count() == 1  # its ring (grey: rest of Russia)
    pg.shot("result")
    pg.shot("result_full", full_page=True)
    with page.expect_download() as dl:
        page.click("[data-file='results.xlsx']")
    path = tmp_path / "results.xlsx"
    dl.value.save_as(path)
    import openpyxl

    sheets = openpyxl.load_workbook(path, read_only=True).sheetnames
    assert {"summary", "sites", "flows"} <= set(sheets)

    # a second run (the library scenario, inline, 7 centres) and the comparison
    page.click("a[href='#scenarios']")
    page.click("[data-lib='ncfd_expansion']")
    page.wait_for_selector("#form-source:has-text('ncfd_expansion')")
    page.uncheck("input[name=group][value=fruit_berries]")
    page.fill("input[name=p]", "7")
    page.fill("input[name=time_limit_s]", "60")
    first = page.text_content("#run-id")
    page.click("#run-now")
    page.wait_for_selector(f"#run-id:not(:text-is('{first}'))")
    assert _wait_run(pg, []) == "succeeded"
    page.click("a[href='#runs']")
    page.wait_for_selector("#runs-table tbody tr >> nth=1")
    page.select_option("#runs-status", "succeeded")
    page.wait_for_selector("#runs-page:text-matches('/ 2$')")
    page.click("a[href='#compare']")
    page.wait_for_selector("#cmp-b option >> nth=1", state="attached")
    page.click("#cmp-go")
    page.wait_for_selector("#cmp-table[data-ready='1']")
    table = page.text_content("#cmp-table")
    assert "Только в B" in table
    # each figure with its difference B − A; the solver status in Russian; prices by region as well as by group
    assert re.fullmatch(r"[-−]1", page.text_content("#cmp-table tr[data-row='centres'] td:nth-child(4)"))
    assert page.text_content("#cmp-table tr[data-row='status'] td:nth-child(2)") == "оптимальное решение"
    assert page.locator("#cmp-table tr[data-row^='cost:'] td:nth-child(4):not(:text-is('—'))").count() >= 4
    assert page.locator("#cmp-prices tr[data-id]").count() == 14
    assert "Разница B − A" in page.text_content("#cmp-prices")
    assert page.locator("#cmp-centres tr[data-change='opened in B'], #cmp-centres tr[data-change='closed in B']"
                        ).count() >= 1  # six centres against seven
    pg.shot("compare")
    pg.shot("compare_full", full_page=True)
    # trade by border crossing: two stored runs, Armenia and Georgia selling through Upper Lars in A only
    a, b = cross_border_runs(server["url"])
    page.click("a[href='#runs']")
    page.click("a[href='#compare']")
    page.wait_for_selector(f"#cmp-b option[value='{b}']", state="attached")
    page.select_option("#cmp-a", a)
    page.select_option("#cmp-b", b)
    page.click("#cmp-go")
    row = page.wait_for_selector("#cmp-crossings tr[data-id='ru_ge_upper_lars']").text_content()
    assert "Верхний Ларс" in row and "Армения (Ереван)" in row and "Грузия (Тбилиси)" in row
    resized = page.text_content("#cmp-centres tr[data-change='resized']")
    assert "ОРЦ Ставрополь / Stavropol centre" in resized and "действующий → действующий + малый" in resized
    # a comparison on screen follows the language switch
    page.click("#lang")
    page.wait_for_selector("#cmp-table[data-ready='1']")
    assert "Only in B" in page.text_content("#cmp-table")
    page.wait_for_selector("#cmp-crossings tr[data-id='ru_ge_upper_lars']")
    page.click("#lang")
    page.wait_for_selector("#cmp-table[data-ready='1']")
    assert "Только в B" in page.text_content("#cmp-table")

    # a larger run is cancelled while it solves
    page.click("a[href='#scenarios']")
    page.click("[data-lib='south_russia_corridors']")
    page.wait_for_selector("#form-source:has-text('south_russia_corridors')")
    first = page.text_content("#run-id")
    page.click("#run-now")
    page.wait_for_selector(f"#run-id:not(:text-is('{first}'))")
    page.wait_for_selector("#run-status[data-status='running']")
    page.click("#run-cancel")
    page.wait_for_selector("#run-status[data-status='cancelled']")
    assert page.is_hidden("#run-cancel")

    # the language switch turns every label to English, and back
    page.click("#lang")
    page.wait_for_selector("a[href='#runs']:has-text('Runs')")
    page.wait_for_selector("#run-status:text-is('cancelled')")
    assert page.text_content("#view-run h2").startswith("Run")
    assert page.get_attribute("html", "lang") == "en"
    page.click("a[href='#map']")
    page.wait_for_selector(".legend:has-text('Surplus (+) or deficit')")
    page.click("#lang")
    page.wait_for_selector("a[href='#runs']:has-text('Расчёты')")

    if SCREENSHOTS:
        _partners_and_trade_pictures(pg, server)

    # the API documentation pages render offline
    for path, sel in (("/docs", ".swagger-ui .authorize"), ("/redoc", "[role=search], .api-content")):
        page.goto(server["base"] + path)
        page.wait_for_selector(sel)
    assert pg.outside() == [] and pg.errors == []
    pg.ctx.close()


def test_viewer_sees_results_but_no_run_or_save(server, browser):
    pg = Page(browser, server["base"])
    page = pg.page
    pg.sign_in(server["viewer"])
    page.wait_for_selector("#map[data-ready='1']")
    assert page.text_content("#role-badge") == "просмотр"
    page.click("a[href='#scenarios']")
    page.wait_for_selector("[data-lib='ncfd_expansion']")
    assert page.is_hidden("#run-now") and page.is_hidden("#save-as")
    assert page.is_visible("#show-yaml")
    # a viewer opens a finished run's result and its files, with nothing to cancel
    finished = httpx.get(f"{server['base']}/runs?status=succeeded&limit=1",
                         headers={"X-API-Key": server["viewer"]}).json()["items"]
    page.click("a[href='#runs']")
    page.wait_for_selector("#runs-table")
    if finished:  # the planner's flow above left runs behind
        page.click(f"#runs-table a[href='#run/{finished[0]['id']}']")
        page.wait_for_selector("#run-result[data-ready='1']")
        assert page.is_hidden("#run-cancel") and page.locator("#downloads li").count() >= 8
        assert page.locator("[data-file='results.xlsx']").count() == 1
    assert pg.outside() == [] and pg.errors == []
    pg.ctx.close()
