"""The API contract the web workspace and analysts rely on (issue #17): every media type an operation answers is
in its OpenAPI entry, a 405's ``Allow`` names every method of the path whichever router serves it, the library
scenarios are read-only stored scenarios that can be run and extended over HTTP, YAML bodies get the limits of
scenario files, and every error the API writes carries a Russian message beside the English one."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from api.db import DEFAULT_ORG, RunRecord, create_key, now, session

FILE_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SMALL = {"name": "api_small", "scope": {"federal_districts": ["NCFD"]}, "commodities": ["vegetables"],
         "objective": {"p": 6}, "solver": {"time_limit_s": 60}}


def _finished_run(url: str) -> str:
    """A succeeded run with a small stored result (as a worker writes it)."""
    result = {"summary": {"scenario": "stored_run", "status": "optimal", "objective": 1.0, "centres": []},
              "tables": {"sites": [{"id": "pyatigorsk", "throughput_t": 1000.0}]},
              "geojson": {"type": "FeatureCollection", "features": []}}
    with session(url) as s:
        run = RunRecord(scenario_id=None, scenario={"name": "stored_run"}, status="succeeded", progress="done",
                        result=result, finished=now(), org=DEFAULT_ORG)
        s.add(run)
        s.commit()
        return run.id


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


# item 1: documented media types ------------------------------------------------------------------------------------

def test_downloads_answer_only_documented_media_types_with_schemas_their_documents_meet(api, small_run_files):
    """schemathesis's ST105 (undocumented content type) and ST108 (body against the schema of its media type): a
    client reading the OpenAPI entry knows every media type each download answers, and what it parses to — every
    kind of file a run's worker writes (``planner.outputs.write_outputs``) included."""
    from conftest import with_files

    tc, p, v, url = api
    spec = tc.get("/openapi.json").json()["paths"]
    sid = tc.post("/scenarios", json=SMALL, headers=p).json()["id"]
    rid = with_files(_finished_run(url), small_run_files)
    files = [f["name"] for f in tc.get(f"/runs/{rid}/files", headers=v).json()]
    assert {n.rsplit(".", 1)[1] for n in files} == {"json", "csv", "geojson", "xlsx", "gpkg", "pdf", "html", "png",
                                                    "svg"}
    fetched = [("/library/{name}/yaml", "/library/ncfd_expansion/yaml"),
               ("/scenarios/{scenario_id}/yaml", f"/scenarios/{sid}/yaml")]
    fetched += [("/runs/{run_id}/files/{name}", f"/runs/{rid}/files/{n}") for n in files]
    for template, path in fetched:
        documented = spec[template]["get"]["responses"]["200"]["content"]
        r = tc.get(path, headers=v)
        assert r.status_code == 200, (path, r.text)
        media = _media(r.headers["content-type"])
        assert media in documented, (path, media, list(documented))
        schema = documented[media]["schema"]
        if media.endswith("yaml"):
            assert schema["type"] == "object" and isinstance(yaml.safe_load(r.text), dict)
        elif media.endswith("json"):
            assert schema["type"] == "object" and isinstance(json.loads(r.content), dict)
        elif media == "text/csv":
            assert schema["type"] == "string" and r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
        elif media in ("text/html", "image/svg+xml"):
            assert schema == {"type": "string"} and r.text.lstrip().startswith("<")
        else:  # bytes: the workbook (a zip), the PDF report, the GeoPackage (SQLite), the PNG map
            magic = {FILE_XLSX: b"PK", "application/pdf": b"%PDF", "image/png": b"\x89PNG",
                     "application/geopackage+sqlite3": b"SQLite format 3"}[media]
            assert schema == {"type": "string", "format": "binary"} and r.content.startswith(magic), path
    # nothing documented that is never answered either: the YAML downloads answer YAML only
    assert list(spec["/library/{name}/yaml"]["get"]["responses"]["200"]["content"]) == ["application/yaml"]
    # and their errors are JSON, as documented on every operation (not the download's media type)
    for template, _ in fetched:
        for status, resp in spec[template]["get"]["responses"].items():
            if not status.startswith("2"):
                assert list(resp["content"]) == ["application/json"], (template, status, list(resp["content"]))
    missing = tc.get("/scenarios/nope/yaml", headers=v)
    assert missing.status_code == 404 and _media(missing.headers["content-type"]) == "application/json"


def test_every_error_answer_is_documented_as_json(api):
    tc, _, _, _ = api
    for path, ops in tc.get("/openapi.json").json()["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if not status.startswith("2") and "content" in resp:
                    assert list(resp["content"]) == ["application/json"], (method, path, status)


# item 2: Allow ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "template", "allow"), [
    ("/runs", "/runs", "GET, POST"),                  # POST in the API, GET in the web workspace's router
    ("/runs/some-id", "/runs/{run_id}", "DELETE, GET"),
    ("/scenarios", "/scenarios", "GET, POST"),
    ("/library", "/library", "GET"),
])
def test_a_405_allow_names_every_method_any_router_serves_on_the_path(api, path, template, allow):
    """schemathesis's ST205: ``OPTIONS /runs`` named POST but not the web router's GET /runs."""
    tc, p, _, _ = api
    for method in ("OPTIONS", "PUT", "PATCH"):
        r = tc.request(method, path, headers=p)
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path, r.headers.get("allow"))
    documented = tc.get("/openapi.json").json()["paths"][template]
    assert {m.upper() for m in documented} == set(allow.split(", "))


# item 4: the library over HTTP --------------------------------------------------------------------------------------

def test_library_files_are_read_only_stored_scenarios(api):
    tc, p, v, _ = api
    listed = {s["id"]: s for s in tc.get("/scenarios", headers=v).json()}
    assert listed["ncfd_expansion"]["library"] is True and listed["ncfd_expansion"]["name"] == "ncfd_expansion"
    assert listed["ncfd_expansion"]["read_only"] is True
    one = tc.get("/scenarios/ncfd_expansion", headers=v).json()
    assert one["library"] is True and one["body"]["scope"]["federal_districts"] == ["NCFD"]
    child = tc.get("/scenarios/eaeu_upper_lars_closed", headers=v).json()["body"]
    assert child["borders"]["ru_ge_upper_lars"]["open"] is False and "extends" not in child
    assert yaml.safe_load(tc.get("/scenarios/ncfd_expansion/yaml", headers=v).text)["name"] == "ncfd_expansion"
    # read-only: no method writes it, and a scenario stored with that name gets its own id
    assert tc.put("/scenarios/ncfd_expansion", json=SMALL, headers=p).status_code == 405
    assert tc.delete("/scenarios/ncfd_expansion", headers=p).status_code == 405
    mine = tc.post("/scenarios", json={**SMALL, "name": "ncfd_expansion"}, headers=p).json()
    assert mine["id"] != "ncfd_expansion" and mine["library"] is False and mine["read_only"] is False
    assert tc.get("/scenarios/ncfd_expansion", headers=v).json()["body"]["objective"]["p"] == 8


def test_a_scenario_extending_a_library_one_is_stored_and_its_run_accepted(api):
    tc, p, v, _ = api
    r = tc.post("/scenarios", json={"name": "ncfd_veg", "extends": "ncfd_expansion", "commodities": ["vegetables"],
                                    "solver": {"time_limit_s": 5}}, headers=p)
    assert r.status_code == 201, r.text
    body = r.json()["body"]
    assert body["scope"]["federal_districts"] == ["NCFD"] and body["objective"]["p"] == 8  # from the library
    assert body["commodities"] == ["vegetables"] and body["solver"]["time_limit_s"] == 5  # its own
    run = tc.post("/runs", json={"scenario_id": r.json()["id"]}, headers=p)
    assert run.status_code == 202, run.text
    assert tc.get(f"/runs/{run.json()['id']}", headers=v).json()["status"] == "queued"
    inline = tc.post("/runs", json={"scenario": {"name": "inline", "extends": "ncfd_baseline",
                                                 "solver": {"time_limit_s": 5}}}, headers=p)
    assert inline.status_code == 202, inline.text
    by_name = tc.post("/runs", json={"scenario_id": "ncfd_expansion"}, headers=p)
    assert by_name.status_code == 202, by_name.text
    listed = tc.get("/runs", params={"scenario_id": "ncfd_expansion"}, headers=v).json()
    assert [i["id"] for i in listed["items"]] == [by_name.json()["id"]]


def test_a_bad_extends_target_is_a_422_naming_extends(api):
    tc, p, _, _ = api
    for target in ("ncfd_nope", "../scenarios/ncfd_expansion", "ncfd_expansion.yaml"):
        r = tc.post("/scenarios", json={"name": "x", "extends": target}, headers=p)
        assert r.status_code == 422, (target, r.text)
        assert [e["loc"] for e in r.json()["detail"]] == [["body", "extends"]]
    r = tc.post("/runs", json={"scenario": {"name": "x", "extends": "ncfd_nope"}}, headers=p)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "scenario", "extends"]
    assert tc.get("/scenarios/ncfd_nope", headers=p).status_code == 404


def test_a_library_scenario_run_by_id_meets_this_services_limits(api, tmp_path, monkeypatch):
    """A library file is checked when it is run by id (a stored scenario was checked when stored): its solver
    time limit over the service's is a 422 at ``["body", "scenario_id"]`` naming the field."""
    tc, p, _, _ = api
    monkeypatch.setattr(tc.app.state, "limits", type(tc.app.state.limits)(max_time_limit_s=60))
    r = tc.post("/runs", json={"scenario_id": "ncfd_expansion"}, headers=p)  # time_limit_s: 120
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "scenario_id", "solver", "time_limit_s"]


def test_the_library_follows_its_folder_when_a_file_is_deleted_or_an_older_one_added(api, tmp_path, monkeypatch):
    """The library list is cached on each file's name, time and size: deleting a file, or adding one whose time is
    older than the rest, shows at the next GET /scenarios."""
    import os

    tc, _, v, _ = api
    folder = tmp_path / "library"
    folder.mkdir()
    for name in ("lib_a", "lib_b"):
        (folder / f"{name}.yaml").write_text(f"name: {name}\nscope: {{federal_districts: [NCFD]}}\n",
                                             encoding="utf-8")
    os.utime(folder / "lib_b.yaml", (1_100_000_000, 1_100_000_000))  # older than lib_a: not the newest time
    monkeypatch.setenv("PLANNER_SCENARIOS", str(folder))

    def files() -> list[str]:
        r = tc.get("/scenarios", headers=v)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json() if s["read_only"]]

    assert files() == ["lib_a", "lib_b"]
    (folder / "lib_b.yaml").unlink()
    assert files() == ["lib_a"]
    assert tc.get("/scenarios/lib_b", headers=v).status_code == 404
    old = folder / "lib_old.yaml"
    old.write_text("name: lib_old\nscope: {federal_districts: [NCFD]}\n", encoding="utf-8")
    os.utime(old, (1_000_000_000, 1_000_000_000))  # 2001: older than every other file
    assert files() == ["lib_a", "lib_old"]


# item 3: YAML bodies ------------------------------------------------------------------------------------------------

YAML = {"content-type": "application/yaml"}
SMALL_YAML = """# the same scenario as SMALL, as a scenario file
name: api_small
scope: {federal_districts: [NCFD]}
commodities: [vegetables]
objective:
  p: 6
solver:
  time_limit_s: 60
"""


def _laughs(depth: int = 9) -> str:
    """A "billion laughs" scenario: nine levels of nine aliases each, 9⁹ values once expanded."""
    text, prev = "name: laughs\nlol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n", "lol0"
    for i in range(1, depth):
        text += f"lol{i}: &lol{i} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = f"lol{i}"
    return text


def _stored_ids(tc, h) -> list[str]:
    return [s["id"] for s in tc.get("/scenarios", headers=h).json() if not s["library"]]


def test_a_yaml_scenario_body_is_stored_and_run_as_its_json_twin(api):
    tc, p, v, _ = api
    from_yaml = tc.post("/scenarios", content=SMALL_YAML.encode(), headers={**p, **YAML})
    from_json = tc.post("/scenarios", json=SMALL, headers=p)
    assert from_yaml.status_code == 201 == from_json.status_code, from_yaml.text
    assert from_yaml.json()["body"] == from_json.json()["body"]
    child = "name: veg\nextends: ncfd_expansion\ncommodities: [vegetables]\nsolver: {time_limit_s: 5}\n"
    r = tc.post("/scenarios", content=child.encode(), headers={**p, "content-type": "application/x-yaml"})
    assert r.status_code == 201 and r.json()["body"]["objective"]["p"] == 8, r.text
    run = tc.post("/runs", content=b"scenario:\n  name: inline\n  extends: ncfd_expansion\n",
                  headers={**p, "content-type": "text/yaml; charset=utf-8"})
    assert run.status_code == 202, run.text
    # documented: every operation taking a JSON body takes the same document in YAML
    spec = tc.get("/openapi.json").json()["paths"]
    for path in ("/scenarios", "/runs", "/estimate/loss-reduction", "/estimate/price-impact"):
        content = spec[path]["post"]["requestBody"]["content"]
        assert content["application/yaml"] == content["application/json"], path


def test_a_billion_laughs_yaml_body_is_refused_at_once_and_nothing_stored(api):
    import time

    tc, p, v, _ = api
    for path in ("/scenarios", "/runs", "/estimate/price-impact"):
        body = _laughs() if path == "/scenarios" else "scenario:\n  " + _laughs().replace("\n", "\n  ")
        start = time.monotonic()
        r = tc.post(path, content=body.encode(), headers={**p, **YAML})
        assert time.monotonic() - start < 5, path
        assert r.status_code == 422, (path, r.text)
        err = r.json()["detail"][0]
        # located at the first field whose value the aliases blow past the limit (9⁶ values), never just "body"
        where = ["body", "lol5"] if path == "/scenarios" else ["body", "scenario", "lol5"]
        assert err["loc"] == where and err["type"] == "yaml_aliases" and "aliases" in err["msg"], err
    assert _stored_ids(tc, v) == []
    assert tc.get("/runs", headers=v).json()["total"] == 0


@pytest.mark.parametrize(("text", "status", "loc", "needle"), [
    ("name: x\nname: y\n", 422, ["body", "name"], "duplicate key 'name' (first at line 1)"),
    ("name: x\nscope:\n  regions: [RU-STA]\n  regions: [RU-KB]\n", 422, ["body", "scope", "regions"], "line 4"),
    ("name: x\nobjective:\n  p: 3\n  p: 4\n", 422, ["body", "objective", "p"], "duplicate key 'p'"),
    ("name: x\nexits:\n- {market: am_yerevan, tariff_export_pct: 1, tariff_export_pct: 2}\n", 422,
     ["body", "exits", 0, "tariff_export_pct"], "duplicate key"),
    ("name: x\nsolver: {time_limit_s: .inf}\n", 422, ["body", "solver", "time_limit_s"], "finite"),
    ("name: x\nparameters: {road_speed_kmh: .nan}\n", 422, ["body", "parameters", "road_speed_kmh"], "finite"),
    ("name: [unclosed\n", 422, ["body", "line 2"], "not valid YAML"),  # no field in text that is not YAML
    ("name: !!binary aGVsbG8=\n", 422, ["body", "name"], "bytes"),
    ("- name: x\n", 422, ["body", "ScenarioIn"], "expected a JSON (or YAML) object"),  # not a mapping
    # more values than a scenario file may hold, counted before the tree is built: at the item that passed 100,000
    # (the mapping, two keys, a value and the list come first)
    ("name: x\ncommodities: [" + "1," * 100_001 + "1]\n", 422, ["body", "commodities", 99_995],
     "more than 100000 values"),
    ("", 422, ["body", "name"], "Field required"),  # empty: read as an empty mapping
    ("name: x\nscope: {regions: [RU-XXX]}\n", 422, ["body", "scope", "regions", 0], "RU-XXX"),
])
def test_a_bad_yaml_body_is_a_422_naming_the_problem(api, text, status, loc, needle):
    tc, p, v, _ = api
    r = tc.post("/scenarios", content=text.encode(), headers={**p, **YAML})
    assert r.status_code == status, r.text
    err = r.json()["detail"][0]
    assert err["loc"] == loc and needle in err["msg"], err
    assert _stored_ids(tc, v) == []


def test_a_yaml_body_that_is_not_utf8_is_a_422(api):
    tc, p, _, _ = api
    r = tc.post("/scenarios", content="name: Пятигорск\n".encode("cp1251"), headers={**p, **YAML})
    assert r.status_code == 422 and "not UTF-8" in r.json()["detail"][0]["msg"], r.text


def test_an_oversized_yaml_body_is_a_413_announced_or_chunked(api):
    tc, p, v, _ = api
    big = ("name: big\ndescription: |\n" + "  строка\n" * 200_000).encode()  # ~2.2 MB
    assert tc.post("/scenarios", content=big, headers={**p, **YAML}).status_code == 413

    def chunks():
        for i in range(0, len(big), 64 * 1024):
            yield big[i:i + 64 * 1024]

    r = tc.post("/scenarios", content=chunks(), headers={**p, **YAML})  # no Content-Length: counted as it streams
    assert r.status_code == 413, r.text
    assert _stored_ids(tc, v) == []


def test_a_yaml_body_has_the_scenario_files_limit_even_when_the_body_limit_is_raised(tmp_path, monkeypatch):
    """``PLANNER_MAX_BODY`` may let larger JSON bodies in; a YAML body stays within the limit of a scenario file on
    the command line (one constant: ``MAX_YAML_BODY`` is ``planner.scenario.MAX_FILE_BYTES``, 1 MiB)."""
    from api.guard import MAX_YAML_BODY
    from planner.scenario import MAX_FILE_BYTES

    assert MAX_YAML_BODY == MAX_FILE_BYTES == 1 << 20
    monkeypatch.setenv("PLANNER_MAX_BODY", str(4 << 20))
    url = f"sqlite:///{tmp_path / 'big.db'}"
    _, key = create_key("planner", url=url)
    body = ("name: big\ndescription: |\n" + "  x" * 700_000 + "\n").encode()
    assert MAX_YAML_BODY < len(body) < 4 << 20
    with TestClient(create_app(url, start_jobs=False), raise_server_exceptions=False) as tc:
        r = tc.post("/scenarios", content=body, headers={"X-API-Key": key, **YAML})
        assert r.status_code == 413 and str(MAX_YAML_BODY) in r.json()["detail"], r.text


def test_a_yaml_body_the_command_line_accepts_is_accepted_and_one_over_its_limit_refused(api, tmp_path,
                                                                                         monkeypatch):
    """The same size limit both ways: a 100 KiB scenario (a commented file) that ``planner.scenario`` reads as a
    file is stored from a YAML body (the former 64 KiB limit refused it); a body over 1 MiB is refused with 413
    before it is parsed, announced or chunked, as the command line refuses such a file."""
    import api.guard as guard
    from planner.scenario import ScenarioError, load_scenario

    tc, p, v, _ = api
    text = "name: long_text\nscope: {federal_districts: [NCFD]}\ncommodities: [vegetables]\n"
    body = (text + "# строка пояснения к сценарию\n" * 2_500).encode()
    assert 100 * 1024 <= len(body) < guard.MAX_YAML_BODY
    (tmp_path / "long_text.yaml").write_bytes(body)
    assert load_scenario(tmp_path / "long_text.yaml").name == "long_text"  # the command line reads it
    r = tc.post("/scenarios", content=body, headers={**p, **YAML})
    assert r.status_code == 201, r.text
    monkeypatch.setattr(guard, "parse_yaml", lambda *a, **k: pytest.fail("a YAML body over the limit was parsed"))
    big = (text + "# строка пояснения к сценарию\n" * 30_000).encode()
    assert guard.MAX_YAML_BODY < len(big) <= tc.app.state.limits.max_body * 2
    (tmp_path / "big.yaml").write_bytes(big)
    with pytest.raises(ScenarioError, match="over the limit"):
        load_scenario(tmp_path / "big.yaml")
    for content in (big, iter([big[:500_000], big[500_000:]])):  # announced, then chunked
        r = tc.post("/scenarios", content=content, headers={**p, **YAML})
        assert r.status_code == 413, r.text
        assert str(guard.MAX_YAML_BODY) in r.json()["detail"] and "MAX_YAML_BODY" in r.json()["detail"]
        assert "предел файла сценария" in r.json()["detail_ru"]
    assert len(_stored_ids(tc, v)) == 1


@pytest.mark.parametrize("key", [None, "orc_not_a_key", "revoked"])
def test_an_anonymous_yaml_body_is_a_401_without_being_parsed(api, monkeypatch, key):
    """Without an active key a YAML body is refused with the routes' own 401 before PyYAML sees it: an anonymous
    client cannot make the server build YAML node trees."""
    import api.guard as guard
    from api.db import create_key as make_key
    from api.db import revoke_key

    tc, p, v, url = api
    if key == "revoked":
        kid, key = make_key("planner", url=url)
        assert revoke_key(kid, url=url)
    monkeypatch.setattr(guard, "parse_yaml", lambda *a, **k: pytest.fail("an anonymous YAML body was parsed"))
    headers = {**YAML, **({"X-API-Key": key} if key else {})}
    for path in ("/scenarios", "/runs", "/estimate/price-impact"):
        r = tc.post(path, content=SMALL_YAML.encode(), headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.json() == tc.get("/scenarios", headers={"X-API-Key": "nope"}).json()  # the app's own 401 body
        assert "X-API-Key" in r.json()["detail"] and "ключ API" in r.json()["detail_ru"]
    assert _stored_ids(tc, v) == []


def test_at_most_two_yaml_bodies_are_parsed_at_once_a_third_gets_429(api, monkeypatch):
    """Two YAML parses at a time per server process; a third is answered 429 with ``Retry-After`` at once (it
    holds no thread waiting), and the next one after a parse ends goes through."""
    import threading

    import api.guard as guard

    tc, p, v, _ = api
    inside, release = threading.Barrier(3), threading.Event()
    real = guard.parse_yaml

    def slow(*args, **kwargs):
        inside.wait(timeout=10)
        release.wait(timeout=10)
        return real(*args, **kwargs)

    monkeypatch.setattr(guard, "parse_yaml", slow)
    answers: list = []
    def post(name: str):
        body = SMALL_YAML.replace("name: api_small", f"name: {name}").encode()
        answers.append(tc.post("/scenarios", content=body, headers={**p, **YAML}))

    posts = [threading.Thread(target=post, args=(f"parallel_{i}",)) for i in range(2)]
    for t in posts:
        t.start()
    inside.wait(timeout=10)  # both parses are under way
    third = tc.post("/scenarios", content=SMALL_YAML.encode(), headers={**p, **YAML})
    release.set()
    for t in posts:
        t.join(timeout=30)
    assert third.status_code == 429 and third.headers["retry-after"] == str(guard.YAML_RETRY_AFTER_S), third.text
    assert "YAML" in third.json()["detail"] and "YAML" in third.json()["detail_ru"]
    assert sorted(r.status_code for r in answers) == [201, 201], [r.text for r in answers]
    monkeypatch.setattr(guard, "parse_yaml", real)
    post("after")
    assert answers[-1].status_code == 201, answers[-1].text


# item 5: errors in Russian beside English ---------------------------------------------------------------------------

CYRILLIC = re.compile("[а-яА-ЯёЁ]")


def _bilingual(r) -> dict:
    """The error body of ``r``: English where it always was, and Russian beside it."""
    body = r.json()
    if isinstance(body["detail"], list):
        for it in body["detail"]:
            assert it["msg"] and CYRILLIC.search(it["msg_ru"]), it
    else:
        assert body["detail"] and CYRILLIC.search(body["detail_ru"]), body
    return body


def test_every_error_body_carries_a_russian_message_beside_the_english_one(api, tmp_path):
    tc, p, v, url = api
    rid = tc.post("/runs", json={"scenario": SMALL}, headers=p).json()["id"]
    cases = [
        (tc.get("/scenarios"), 401, "missing or unknown API key"),
        (tc.get("/runs", headers={"X-API-Key": "nope"}), 401, "missing or unknown API key"),  # the web router's
        (tc.post("/scenarios", json=SMALL, headers=v), 403, "may read but not write"),
        (tc.get("/scenarios/nope", headers=v), 404, "no stored scenario"),
        (tc.get("/runs/nope/files", headers=v), 404, "no run with id"),
        (tc.get("/library/nope", headers=v), 404, "no library scenario"),
        (tc.get("/no/such/path", headers=v), 404, "Not Found"),
        (tc.put("/runs", headers=v), 405, "Method Not Allowed"),
        (tc.get(f"/runs/{rid}/result", headers=v), 409, "has no result"),
        (tc.get(f"/runs/{rid}/files", headers=v), 409, "has no files"),
        (tc.post("/scenarios", content=b"{}", headers={**p, "content-type": "application/json",
                                                        "content-length": "x"}), 400, "Content-Length"),
        (tc.post("/scenarios", content=b"x" * (2 << 20), headers={**p, "content-type": "application/json"}), 413,
         "request body over"),
    ]
    for r, status, english in cases:
        assert r.status_code == status, (status, r.text)
        body = _bilingual(r)
        assert english in body["detail"], body
    monkey = type(tc.app.state.limits)(max_active_runs_per_key=1)
    tc.app.state.limits, saved = monkey, tc.app.state.limits
    try:
        busy = tc.post("/runs", json={"scenario": SMALL}, headers=p)
    finally:
        tc.app.state.limits = saved
    assert busy.status_code == 429 and busy.headers["retry-after"]
    assert "PLANNER_MAX_RUNS_PER_KEY" in _bilingual(busy)["detail_ru"]
    assert _bilingual(busy)["detail_ru"].startswith("у этого ключа 1 запусков")


@pytest.mark.parametrize(("request_", "loc", "english", "russian"), [
    # pydantic's own checks, by kind and bound
    ({"json": {**SMALL, "objective": {"p": 20000}}}, ["body", "objective", "p"], "less than or equal to 10000",
     "не больше 10000"),
    ({"json": {**SMALL, "colour": "red"}}, ["body", "colour"], "Extra inputs", "неизвестное поле"),
    # the dataset's checks, with the hint carried over
    ({"json": {**SMALL, "scope": {"regions": ["RU-STAA"]}}}, ["body", "scope", "regions", 0], "unknown region",
     "неизвестный регион 'RU-STAA'. Возможно, имелось в виду 'RU-STA'"),
    ({"json": {**SMALL, "scope": {"countries": ["ZZ"]}}}, ["body", "scope", "countries", 0], "unknown country",
     "неизвестная страна 'ZZ'"),
    # the app's own checks
    ({"json": {**SMALL, "solver": {"time_limit_s": 86000}}}, ["body", "solver", "time_limit_s"],
     "at most 3600 s on this service", "не больше 3600 с"),
    ({"json": {**SMALL, "extends": "nope"}}, ["body", "extends"], "no stored or library scenario",
     "нет сохранённого или библиотечного сценария"),
    # the body guard's
    ({"content": b'{"name": "x", "solver": {"time_limit_s": NaN}}', "headers": {"content-type": "application/json"}},
     ["body", "solver", "time_limit_s"], "finite number", "конечное число"),
    ({"content": _laughs().encode(), "headers": YAML}, ["body", "lol5"], "aliases", "ссылок"),
    ({"content": b"name: x\nname: y\n", "headers": YAML}, ["body", "name"], "duplicate key 'name'",
     "ключ 'name' повторён (впервые — в строке 1)"),
])
def test_every_422_item_carries_its_russian_message(api, request_, loc, english, russian):
    tc, p, _, _ = api
    r = tc.post("/scenarios", **{**request_, "headers": {**p, **request_.get("headers", {})}})
    assert r.status_code == 422, r.text
    found = [it for it in _bilingual(r)["detail"] if it["loc"] == loc]
    assert found and english in found[0]["msg"] and russian in found[0]["msg_ru"], r.json()


def test_the_query_checks_of_the_map_layers_answer_in_both_languages(api):
    tc, _, v, _ = api
    r = tc.get("/datasets/layers/regions", params={"indicator": "nope"}, headers=v)
    assert r.status_code == 422
    it = _bilingual(r)["detail"][0]
    assert it["loc"] == ["query", "indicator"] and "допустимые показатели" in it["msg_ru"]


def test_the_error_model_documents_both_languages(api):
    tc, _, _, _ = api
    schemas = tc.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["Error"]["required"]) == {"detail", "detail_ru"}
    assert set(schemas["ErrorItem"]["required"]) == {"loc", "msg", "msg_ru", "type"}


def test_the_api_raises_no_error_without_its_russian():
    """Every plain error the API raises is an ``ApiError`` (English and Russian); a bare ``HTTPException`` is
    allowed only for a 422 whose items carry their own ``msg_ru``."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "api"
    bare = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "HTTPException":
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Constant) and first.value == 422):
                    bare.append(f"{path.name}:{node.lineno}")
    assert bare == [], bare


# the web comparison: the table of differences the command line gives -----------------------------------------------

def test_compare_answers_the_command_lines_table_of_differences(api, cross_border_runs):
    """POST /compare gives what ``planner compare`` gives (one domain function): centres opened, closed or resized
    by stable site identity, and trade by border crossing and by country (A, B, change) — Armenia's and Georgia's
    sales through Upper Lars stop in B — while the keys earlier clients read stay."""
    tc, p, v, url = api
    a, b = cross_border_runs(url)
    r = tc.post("/compare", json={"run_a": a, "run_b": b}, headers=v)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["only_a"] == ["pyatigorsk"] and doc["only_b"] == ["nalchik"]  # the keys earlier clients read
    assert doc["a"]["objective"] == 2.0e9 and doc["a"]["scenario"] == "lars_open" and doc["a"]["gap"] == 0.001
    centres = {c["id"]: c for c in doc["centres"]}
    assert centres["ru_sta_orc"]["change"] == "resized"
    assert (centres["ru_sta_orc"]["size_a"], centres["ru_sta_orc"]["size_b"]) == ("existing", "existing+small")
    assert centres["pyatigorsk"]["change"] == "closed in B" and centres["nalchik"]["change"] == "opened in B"
    assert centres["nalchik"]["name_ru"] == "Нальчик"
    lars = next(c for c in doc["trade_by_crossing"] if c["crossing"] == "ru_ge_upper_lars")
    assert set(lars["markets"]) == {"am_yerevan", "ge_tbilisi"} and "Верхний Ларс" in lars["name_ru"]
    assert (lars["imports_a_t"], lars["imports_b_t"], lars["imports_change_t"]) == (2000.0, 0.0, -2000.0)
    assert not any("ru_rest" in c["markets"] for c in doc["trade_by_crossing"])  # domestic trade crosses nothing
    armenia = next(c for c in doc["trade_by_country"] if c["country"] == "AM")
    assert armenia["name_ru"] == "Армения" and armenia["imports_change_t"] == -1200.0
    # the same document the command line builds from the same two summaries
    from planner.compare import compare_inputs, compare_summaries
    from planner.data.loader import load_dataset

    sa = tc.get(f"/runs/{a}/result", headers=v).json()["summary"]
    sb = tc.get(f"/runs/{b}/result", headers=v).json()["summary"]
    cli = compare_summaries(sa, sb, None, None, *compare_inputs(load_dataset(), sa, sb))
    for key in ("centres", "trade_by_crossing", "trade_by_country", "trade_by_market", "headline",
                "loss_reduction_pct", "consumer_price_change_pct", "cost_breakdown_rub"):
        assert [{k: v for k, v in row.items() if v is not None} for row in doc[key]] == [
            {k: v for k, v in row.items() if v is not None} for row in cli[key]], key


def test_a_repeated_compare_builds_the_corridor_network_once(api, cross_border_runs, monkeypatch):
    """POST /compare keeps the network-derived part (graph, each market's crossings) per dataset: two compares,
    and the command line's compare after them, build the corridor graph once and answer alike."""
    import planner.compare as compare
    import planner.network as network

    tc, _, v, url = api
    a, b = cross_border_runs(url)
    built = []
    real = network.corridor_graph
    monkeypatch.setattr(network, "corridor_graph", lambda *args, **kw: built.append(1) or real(*args, **kw))
    monkeypatch.setattr(compare, "_NETWORKS", {})
    first = tc.post("/compare", json={"run_a": a, "run_b": b}, headers=v)
    second = tc.post("/compare", json={"run_a": b, "run_b": a}, headers=v)
    assert first.status_code == 200 == second.status_code, (first.text, second.text)
    assert len(built) == 1
    lars = {c["crossing"]: c["markets"] for c in second.json()["trade_by_crossing"]}
    assert set(lars["ru_ge_upper_lars"]) == {"am_yerevan", "ge_tbilisi"}
    assert first.json()["trade_by_crossing"][0]["imports_change_t"] == -second.json()["trade_by_crossing"][0][
        "imports_change_t"]


def test_compare_of_a_summary_with_null_values_answers_200(api, monkeypatch):
    """A stored summary whose per-commodity figures hold null (a NaN written as JSON) still compares: the null
    adds nothing to a total instead of a 500."""
    from conftest import cross_border_summary, stored_run

    tc, _, v, url = api
    sa = cross_border_summary("with_nulls", [("pyatigorsk", "Пятигорск", "Pyatigorsk", "small")], 1200.0, 800.0)
    sa["exports_by_exit_t"]["ru_rest"] = {"potatoes": 5000.0, "vegetables": None}
    sa["imports_t"] = {"fruit_berries": None, "vegetables": 800.0}
    sa["loss_tonnes_baseline"] = {"vegetables": 100.0, "potatoes": None}
    sa["loss_tonnes_network"] = {"vegetables": 60.0}
    sb = cross_border_summary("plain", [("nalchik", "Нальчик", "Nalchik", "large")], 0.0, 0.0)
    a, b = stored_run(url, sa), stored_run(url, sb)
    r = tc.post("/compare", json={"run_a": a, "run_b": b}, headers=v)
    assert r.status_code == 200, r.text
    doc = r.json()
    rest = next(m for m in doc["trade_by_market"] if m["market"] == "ru_rest")
    assert (rest["exports_a_t"], rest["exports_b_t"]) == (5000.0, 5000.0)
    head = {h["key"]: h for h in doc["headline"]}
    assert head["imports_t_per_yr"]["a"] == 800.0 and head["loss_saved_t_per_yr"]["a"] == 40.0


def test_a_failed_runs_error_is_answered_in_russian_too(api):
    """Every message the job layer writes into a failed run is translated by its pattern (not the fallback's
    lead-in), and GET /runs/{id} answers it as ``error_ru`` beside ``error``."""
    import signal

    from api.jobs import INTERRUPTED, MEMORY_HINT, JobManager
    from api.messages import ru_run_error

    class _Limits:
        worker_memory_mb = 512

    exit_reason = JobManager._exit_reason.__get__(type("M", (), {"limits": _Limits()})())
    written = [MEMORY_HINT.format(mb=512), INTERRUPTED.format(why="its lease ran out"),
               "interrupted: the server was shut down while the run was running; submit it again",
               "deadline of 130 s passed at stage 'solving' (solver.time_limit_s plus PLANNER_RUN_ALLOWANCE_S); "
               "the worker was stopped", exit_reason(-signal.SIGKILL), exit_reason(3),
               "not started: stored by an older version, its scenario is no longer valid: scope: empty"]
    for msg in written:
        ru = ru_run_error(msg)
        assert CYRILLIC.search(ru) and "подробности по-английски" not in ru, (msg, ru)
    assert "512" in ru_run_error(written[0]) and "«solving»" in ru_run_error(written[3])
    assert "памяти" in ru_run_error(written[4])  # a killed worker under a memory limit says why
    assert ru_run_error("HiGHS said no").startswith("Расчёт завершился с ошибкой (подробности по-английски)")
    tc, p, v, url = api
    with session(url) as s:
        run = RunRecord(scenario={"name": "x"}, key_id=None, org=DEFAULT_ORG, status="failed", progress="interrupted",
                        finished=now(), error=written[1])
        s.add(run)
        s.commit()
        rid = run.id
    r = tc.get(f"/runs/{rid}", headers=v).json()
    assert r["error"] == written[1] and r["error_ru"].startswith("прерван: рабочий процесс исчез")


# item 4: Russian without English fragments ---------------------------------------------------------------------------

QUOTED = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|«[^»]*»|\([A-Z]{2}\)")
LATIN = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/*]*")
ACRONYMS = {"YAML", "JSON", "API", "UTF", "MiB", "NaN", "null", "true", "false", "id", "billion", "laughs"}


def _english_words(text: str, names: set[str]) -> list[str]:
    """Latin words of a Russian message that are prose, not code: what is quoted (ids, values) is left out, and so
    are field, schema and parameter names (``names``), dotted or snake_case paths, ids and codes with digits or
    capitals (RU-STA, PLANNER_MAX_BODY), and the acronyms YAML, JSON, API."""
    words = []
    for w in LATIN.findall(QUOTED.sub(" ", text)):
        w = w.rstrip(".-/")
        if (w in names or w in ACRONYMS or any(c in w for c in "_./*") or any(c.isdigit() for c in w)
                or (len(w) > 1 and w.upper() == w) or ("-" in w and w.lower() != w)):  # X-API-Key, RU-STA
            continue
        words.append(w)
    return words


def _field_names(tc) -> set[str]:
    """Every property and schema name of the OpenAPI document, the scenario's nested ones included."""
    schema = tc.get("/openapi.json").json()
    from planner.scenario import scenario_json_schema

    names: set[str] = set()
    stack = [schema, scenario_json_schema()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            names |= set(node.get("properties", {})) | set(node.get("schemas", {})) | set(node.get("$defs", {}))
            names |= {q["name"] for q in node.get("parameters", []) if isinstance(q, dict) and "name" in q}
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def test_russian_messages_of_typical_errors_have_no_english_prose(api):
    """Every ``msg_ru`` / ``detail_ru`` of a set of typical errors (a planner's mistakes in a scenario, its
    counts, its YAML, the run and estimate bodies, ids, keys, roles, sizes) is Russian prose: only field names,
    quoted ids and values, codes and the acronyms YAML/JSON/API are left in Latin letters."""
    tc, p, v, url = api
    names = _field_names(tc)
    rid = tc.post("/runs", json={"scenario": SMALL}, headers=p).json()["id"]
    yaml_h = {**p, **YAML}
    answers = [
        tc.post("/runs", json={}, headers=p),
        tc.post("/runs", json={"scenario_id": "x", "scenario": SMALL}, headers=p),
        tc.post("/runs", json=[1, 2], headers=p),
        tc.post("/estimate/loss-reduction", json={}, headers=p),
        tc.post("/scenarios", json={**SMALL, "objective": {"p": 500}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "objective": {"p": 3, "min_regions": 5}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "objective": {"p": 3, "min_per_region": {"RU-STA": 900}}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "scope": {"regions": ["RU-STAA"]}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "scope": {"countries": ["ZZ"]}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "scope": {}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "scope": {"federal_districts": ["XFD"]}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "commodities": ["rice"]}, headers=p),
        tc.post("/scenarios", json={**SMALL, "parameters": {"road_sped_kmh": 50}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "parameters": {"road_speed_kmh": 500}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "borders": {"ru_xx_nowhere": {"open": False}}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "exits": [{"market": "am_yerevn"}]}, headers=p),
        tc.post("/scenarios", json={**SMALL, "exits": [{}]}, headers=p),
        tc.post("/scenarios", json={**SMALL, "solver": {"time_limit_s": 86000}}, headers=p),
        tc.post("/scenarios", json={**SMALL, "extends": "nope"}, headers=p),
        tc.post("/scenarios", json={**SMALL, "colour": "red"}, headers=p),
        tc.post("/scenarios", json={**SMALL, "commodities": ["vegetables", "vegetables"]}, headers=p),
        tc.post("/scenarios", json={**SMALL, "name": "x" * 200}, headers=p),
        tc.post("/scenarios", content=b"name: x\nobjective:\n  p: 3\n  p: 4\n", headers=yaml_h),
        tc.post("/scenarios", content=b"name: [unclosed\n", headers=yaml_h),
        tc.post("/scenarios", content=b"name: x\n  bad: indent\n", headers=yaml_h),
        tc.post("/scenarios", content=b"name: !!binary aGVsbG8=\n", headers=yaml_h),
        tc.post("/scenarios", content="name: é\n".encode("latin-1"), headers=yaml_h),
        tc.post("/scenarios", content=_laughs().encode(), headers=yaml_h),
        tc.post("/scenarios", content=b'{"name": "x", "solver": {"time_limit_s": NaN}}',
                headers={**p, "content-type": "application/json"}),
        tc.post("/scenarios", content=b'{"name": "x", "name": "y"}', headers={**p, "content-type": "application/json"}),
        tc.post("/estimate/loss-reduction", json={"scenario": SMALL, "centres": ["nowhere"]}, headers=p),
        tc.get("/datasets/layers/regions", params={"indicator": "nope"}, headers=v),
        tc.get("/scenarios"),
        tc.post("/scenarios", json=SMALL, headers=v),
        tc.get("/scenarios/nope", headers=v),
        tc.get(f"/runs/{rid}/result", headers=v),
        tc.get(f"/runs/{rid}/files", headers=v),
        tc.get("/runs/nope/files", headers=v),
        tc.get("/no/such/path", headers=v),
        tc.put("/runs", headers=v),
        tc.post("/scenarios", content=b"x" * (2 << 20), headers={**p, "content-type": "application/json"}),
    ]
    found = {}
    for r in answers:
        assert 400 <= r.status_code < 500, (r.request.url, r.text)
        body = _bilingual(r)
        texts = ([it["msg_ru"] for it in body["detail"]] if isinstance(body["detail"], list)
                 else [body["detail_ru"]])
        for text in texts:
            english = _english_words(text, names)
            if english:
                found[text] = english
    assert not found, "\n".join(f"{t!r}: {w}" for t, w in found.items())
