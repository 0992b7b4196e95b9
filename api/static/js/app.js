/* The web workspace: sign-in, map, scenarios, runs, results and comparison. Calls the same HTTP API the analysts
   use, with the key from sessionStorage in the X-API-Key header (never in a URL). No external requests. */
"use strict";
(function () {
  const VOCAB = window.ORC_VOCAB;
  const I18N = window.ORC_I18N;
  const $ = (sel) => document.querySelector(sel);
  const state = { role: null, lang: localStorage.getItem("orc_lang") || "ru", params: null, crossings: null,
    form: { source: null, kind: null, body: null }, runsOffset: 0, poll: null, maps: {} };

  // ------------------------------------------------------------------ language
  function t(key) { return (I18N[state.lang] && I18N[state.lang][key]) || I18N.ru[key] || key; }
  function nm(obj) { return obj ? (state.lang === "en" ? (obj.name_en || obj.en || obj.name_ru || obj.ru)
    : (obj.name_ru || obj.ru || obj.name_en || obj.en)) : ""; }
  function progressText(p) {
    p = p || ""; const P = window.ORC_PROGRESS;
    if (P[p]) { return P[p][state.lang]; }
    if (p.startsWith("solving:")) { return P["solving:"][state.lang] + p.slice(8); }
    return p;
  }
  function flowKind(k) { return window.ORC_FLOW_KINDS[k] ? window.ORC_FLOW_KINDS[k][state.lang] : k; }
  function costName(k) { return state.lang === "ru" && window.ORC_COST_RU[k] ? window.ORC_COST_RU[k] : k; }
  function commodityName(key) { const c = VOCAB.commodities.find((x) => x.key === key); return c ? nm(c) : key; }
  // the solver's status word and a centre's module id ("existing+small", "store_large") in the page's language
  function statusName(s) { const S = window.ORC_SOLVER_STATUS; return S[s] ? S[s][state.lang] : (s || "—"); }
  function sizeName(size) {
    if (!size) { return "—"; }
    const S = window.ORC_SIZES; const T = window.ORC_STORE_TYPES;
    return String(size).split("+").map((part) => {
      if (S[part]) { return S[part][state.lang]; }
      const cut = part.lastIndexOf("_"); const type = part.slice(0, cut); const sz = part.slice(cut + 1);
      if (cut > 0 && T[type] && S[sz]) { return `${T[type][state.lang]}, ${S[sz][state.lang]}`; }
      return part;
    }).join(" + ");
  }
  // a commodity group's colour on the result map (the report charts' palette, by the group's place in the list)
  function groupColour(key) {
    const i = VOCAB.commodities.findIndex((x) => x.key === key); const pal = window.ORC_GROUP_COLOURS;
    return i < 0 ? "#555555" : pal[i % pal.length];
  }
  function applyLang() {
    document.documentElement.lang = state.lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $("#lang").textContent = state.lang === "ru" ? "EN" : "RU";
    document.title = t("app_title");
    if (state.role) { $("#role-badge").textContent = t("role_" + state.role); }
  }
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "ru" ? "en" : "ru";
    localStorage.setItem("orc_lang", state.lang);
    applyLang();
    fillStatic();
    route();
    // a comparison on screen is drawn again in the new language (its tables carry translated labels)
    if (location.hash === "#compare" && $("#cmp-table").dataset.ready === "1") {
      $("#cmp-table").dataset.ready = ""; $("#cmp-go").click();
    }
  });

  // ------------------------------------------------------------------ API
  function key() { return sessionStorage.getItem("orc_key"); }
  async function api(path, opts = {}) {
    const headers = Object.assign({ "X-API-Key": key() || "" }, opts.headers || {});
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
    let resp;
    const method = opts.method || "GET";
    for (let attempt = 0; ; attempt++) {  // a busy server's 429 on a read: wait as long as it asks, then retry
      resp = await fetch(path, { method, headers, body: opts.body });
      if (resp.status !== 429 || method !== "GET" || attempt >= 2) { break; }  // a refused run is shown at once
      const wait = Number(resp.headers.get("retry-after")) || 2;
      await new Promise((ok) => setTimeout(ok, Math.min(30, wait) * 1000));
    }
    if (resp.status === 401 && path !== "/whoami") { signOut(t("bad_key")); throw new Error("401"); }
    const type = resp.headers.get("content-type") || "";
    const data = type.includes("json") ? await resp.json() : await resp.text();
    if (!resp.ok) { const e = new Error(typeof data === "string" ? data : errText(data)); e.status = resp.status; e.data = data; throw e; }
    return data;
  }
  // the API writes every error in English and Russian (detail / detail_ru; a 422's items msg / msg_ru): the page
  // shows the one of its language
  function itemMsg(d) { return (state.lang === "ru" && d.msg_ru) || d.msg; }
  function errText(data) {
    if (!data || data.detail === undefined) { return JSON.stringify(data); }
    if (Array.isArray(data.detail)) { return data.detail.map((d) => ((d.loc || []).filter((x) => x !== "body").join(".") + ": " + itemMsg(d))).join("; "); }
    return (state.lang === "ru" && data.detail_ru) || data.detail;
  }
  async function download(path, filename) {
    const resp = await fetch(path, { headers: { "X-API-Key": key() } });
    if (!resp.ok) { const text = await resp.text(); let msg = text; try { msg = errText(JSON.parse(text)); } catch (e) { /* not JSON */ } throw new Error(msg); }
    const url = URL.createObjectURL(await resp.blob());
    const a = document.createElement("a");
    a.href = url; a.download = filename; document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  function signed(v, digits) {
    /* A difference with its sign ("+1,7", "−0,04"); "0" when it rounds to nothing; "—" when it is missing. */
    if (v === null || v === undefined || Number.isNaN(v)) { return "—"; }
    if (Math.abs(v) < 0.5 * Math.pow(10, -digits)) { return "0"; }
    return (v > 0 ? "+" : "") + num(v, digits);
  }
  function esc(s) { return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
  function num(v, digits = 1) {
    if (v === null || v === undefined || Number.isNaN(v)) { return "—"; }
    if (Math.abs(Number(v)) < 0.5 * Math.pow(10, -digits)) { v = 0; }  // never "-0"
    return Number(v).toLocaleString(state.lang === "ru" ? "ru-RU" : "en-GB", { maximumFractionDigits: digits });
  }

  // ------------------------------------------------------------------ sign-in and roles
  function signOut(message) {
    sessionStorage.removeItem("orc_key"); state.role = null;
    $("#nav").hidden = true; $("#signout").hidden = true; $("#role-badge").hidden = true;
    stopPoll(); show("signin");
    $("#signin-error").textContent = message || "";
  }
  async function signIn(k) {
    sessionStorage.setItem("orc_key", k);
    try {
      const who = await api("/whoami");
      state.role = who.role;
    } catch (e) {
      sessionStorage.removeItem("orc_key");
      $("#signin-error").textContent = e.status === 401 ? t("bad_key") : t("no_server") + ": " + e.message;
      return false;
    }
    $("#signin-error").textContent = "";
    document.body.classList.toggle("viewer", state.role !== "planner" && state.role !== "admin");
    $("#nav").hidden = false; $("#signout").hidden = false; $("#role-badge").hidden = false;
    applyLang();
    return true;
  }
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const k = $("#signin-key").value.trim();
    if (await signIn(k)) { $("#signin-key").value = ""; if (!location.hash || location.hash === "#signin") { location.hash = "#map"; } else { route(); } }
  });
  $("#signout").addEventListener("click", () => signOut(""));

  // ------------------------------------------------------------------ views
  function show(name) {
    document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== "view-" + name; });
    document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === "#" + name));
  }
  function route() {
    if (!state.role) { show("signin"); return; }
    stopPoll();
    const [view, arg] = (location.hash.slice(1) || "map").split("/");
    if (view === "run" && arg) { show("run"); openRun(arg); return; }
    if (!["map", "scenarios", "runs", "compare"].includes(view)) { show("map"); viewMap(); return; }
    show(view);
    ({ map: viewMap, scenarios: viewScenarios, runs: viewRuns, compare: viewCompare })[view]();
  }
  window.addEventListener("hashchange", route);

  function fillStatic() {
    const sel = $("#commodity"); const cur = sel.value || "vegetables";
    sel.innerHTML = VOCAB.commodities.map((c) => `<option value="${c.key}">${esc(nm(c))}</option>`).join("");
    sel.value = cur;
  }

  // ------------------------------------------------------------------ map helpers
  const PALETTE = ["#f7fcf5", "#d9f0d3", "#a6dba0", "#5aae61", "#1b7837", "#00441b"];
  function baseMap(el) {
    if (state.maps[el]) { state.maps[el].remove(); }
    const m = L.map(el, { zoomSnap: 0.25, attributionControl: true, preferCanvas: false }).setView([45, 44], 5);
    m.attributionControl.setPrefix("Leaflet");
    L.control.scale({ metric: true, imperial: false }).addTo(m);
    // optional tile layer (PLANNER_TILE_URL): only when the operator set one; none by default (offline)
    if (VOCAB.tiles) { L.tileLayer(VOCAB.tiles.url, { attribution: esc(VOCAB.tiles.attribution), maxZoom: 19 }).addTo(m); }
    state.maps[el] = m;
    return m;
  }
  function breaks(values) {
    const v = values.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
    if (!v.length) { return []; }
    const out = [];
    for (let i = 1; i < PALETTE.length; i++) { out.push(v[Math.min(v.length - 1, Math.floor((i * v.length) / PALETTE.length))]); }
    return out;
  }
  const DIVERGING = ["#b2182b", "#ef8a62", "#fddbc7", "#d9f0d3", "#7fbf7b", "#1b7837"];
  function symmetricBreaks(values) {
    const a = values.filter((x) => x !== null && x !== undefined).map(Math.abs).sort((x, y) => x - y);
    if (!a.length) { return []; }
    const q1 = a[Math.floor(a.length / 3)]; const q2 = a[Math.floor((2 * a.length) / 3)];
    return [-q2, -q1, 0, q1, q2];
  }
  function colour(v, br, pal = PALETTE) {
    if (v === null || v === undefined) { return "#e6e6e6"; }
    let i = 0; while (i < br.length && v >= br[i]) { i++; }
    return pal[Math.min(i, pal.length - 1)];
  }
  function regionPopup(p, meta) {
    const unit = meta ? meta.unit : "";
    return `<b>${esc(p.name_ru || "")}</b><br><i>${esc(p.name_en || "")}</i> (${esc(p.region_id)})<br>` +
      (meta ? `${esc(state.lang === "en" ? meta.en : meta.ru)}${meta.commodity ? " — " + esc(state.lang === "en" ? meta.commodity_en : meta.commodity_ru) : ""}: ` +
        `<b>${p.value === null ? t("no_data") : num(p.value, 2) + " " + esc(unit)}</b>` +
        (p.year ? `, ${t("year")} ${esc(p.year)}` : "") + (p.approximate ? ` <span class="approx">${t("approximate")}</span>` : "") +
        (p.source ? `<br><small>${t("source")}: ${esc(String(p.source).slice(0, 240))}</small>` : "") : "") +
      (p.population ? `<br>${t("population")}: ${num(p.population, 0)} (${esc(p.population_year || "")})` : "") +
      (p.outline_approximate ? `<br><span class="approx">${t("outline_schematic")}</span>` : "");
  }
  function legendControl(m, html, position = "bottomright", cls = "legend") {
    const c = L.control({ position });
    c.onAdd = () => { const d = L.DomUtil.create("div", cls); d.innerHTML = html; return d; };
    c.addTo(m);
    return c;
  }
  function corridorLayer(gj) {
    return L.geoJSON(gj, { style: (f) => f.properties.mode === "rail" ? { color: "#34495e", weight: 2, dashArray: "6 4" } : { color: "#c0392b", weight: 2 },
      onEachFeature: (f, l) => { const p = f.properties;
        l.bindPopup(`<b>${esc(state.lang === "en" ? p.corridor_en : p.corridor_ru)}</b><br>${esc(state.lang === "en" ? p.from_en : p.from_ru)} — ${esc(state.lang === "en" ? p.to_en : p.to_ru)}<br>` +
          `${t(p.mode === "rail" ? "corridor_rail" : "corridor_road")}, ${num(p.km, 0)} ${t("km")}`); } });
  }
  function crossingLayer(gj) {
    return L.geoJSON(gj, { pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 6, color: "#000", weight: 1, fillOpacity: 0.9,
      fillColor: f.properties.open === false ? "#e74c3c" : "#2ecc71" }),
    onEachFeature: (f, l) => { const p = f.properties;
      l.bindPopup(`<b>${esc(p.name_ru)}</b><br><i>${esc(p.name_en)}</i><br>${p.country_a}–${p.country_b}, ${esc(p.mode)}<br>` +
        `${t(p.open === false ? "crossing_closed" : "crossing_open")}; ${t("delay")}: ${num(p.typical_delay_h)}` + (p.approximate ? ` <span class="approx">${t("approximate")}</span>` : "")); } });
  }
  function centresLayer(gj) {
    return L.geoJSON(gj, { pointToLayer: (f, ll) => L.circleMarker(ll, { radius: f.properties.kind === "orc" ? 7 : 5, color: "#222", weight: 1,
      fillColor: f.properties.kind === "orc" ? "#8e44ad" : "#f1c40f", fillOpacity: 0.95 }),
    onEachFeature: (f, l) => { const p = f.properties;
      l.bindPopup(`<b>${esc(p.name_ru)}</b><br><i>${esc(p.name_en)}</i><br>${t(p.kind === "orc" ? "existing_centre" : "wholesale_market")}, ${esc(state.lang === "en" ? p.city_en : p.city_ru)}<br>` +
        `${t("capacity")}: ${num(p.capacity_kt)}` + (p.capacity_approximate ? ` <span class="approx">${t("approximate")}</span>` : "") +
        (p.capacity_source ? `<br><small>${t("source")}: ${esc(String(p.capacity_source).slice(0, 200))}</small>` : "")); } });
  }
  function candidateLayer(gj) {
    return L.geoJSON(gj, { pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 3, color: "#e67e22", weight: 1, fillOpacity: 0.6 }),
      onEachFeature: (f, l) => { const p = f.properties;
        l.bindPopup(`<b>${esc(p.name_ru)}</b><br><i>${esc(p.name_en || "")}</i><br>${t("candidate")} (${esc(p.candidate_id)}), ${esc(p.region_id)}`); } });
  }

  async function countriesLayer() {
    if (!state.countries) { state.countries = await api("/datasets/layers/countries"); }
    const src = state.countries.meta.source || "";
    return L.geoJSON(state.countries, { style: { color: "#8a8a8a", weight: 0.8, fillColor: "#e9e4d8", fillOpacity: 1 },
      onEachFeature: (f, l) => l.bindPopup(`<b>${esc(f.properties.name_ru)}</b><br><i>${esc(f.properties.name_en)}</i> (${esc(f.properties.iso3)})<br><small>${t("source")}: ${esc(src)}</small>`) });
  }

  // ------------------------------------------------------------------ map view
  let mapLayers = {};
  async function viewMap() {
    fillStatic();
    $("#map").dataset.ready = "";
    const lib = await api("/library");
    const sel = $("#map-scenario"); const cur = sel.value || "ncfd_expansion";
    sel.innerHTML = lib.map((s) => `<option value="${s.name}">${esc(state.lang === "en" ? (s.title_en || s.name) : (s.title_ru || s.name))}</option>`).join("");
    if (lib.some((s) => s.name === cur)) { sel.value = cur; }
    const m = baseMap("map");
    mapLayers = {};
    const [corr, centres] = await Promise.all([api("/datasets/corridors"), api("/datasets/layers/centres")]);
    const countries = await countriesLayer();
    if (state.maps.map !== m) { return; }  // a newer view (language switch, another click) has replaced this map
    mapLayers.countries = countries.addTo(m);
    await drawRegions(m);
    if (state.maps.map !== m) { return; }
    mapLayers.corridors = corridorLayer(corr).addTo(m);
    mapLayers.centres = centresLayer(centres).addTo(m);
    await drawScenarioLayers(m);
    if (state.maps.map !== m) { return; }
    const overlays = {}; overlays[t("lay_corridors")] = mapLayers.corridors; overlays[t("lay_centres")] = mapLayers.centres;
    overlays[t("lay_crossings")] = mapLayers.crossings; overlays[t("lay_candidates")] = mapLayers.candidates;
    L.control.layers(null, overlays, { collapsed: false }).addTo(m);
    $("#map").dataset.ready = "1";
  }
  async function drawRegions(m) {
    const ind = $("#indicator").value;
    $("#commodity-wrap").hidden = !["production", "surplus"].includes(ind);
    const gj = await api(`/datasets/layers/regions?indicator=${encodeURIComponent(ind)}&commodity=${encodeURIComponent($("#commodity").value || "vegetables")}`);
    if (state.maps.map !== m) { return; }  // the map was replaced while the layer loaded
    const diverging = ind === "surplus";
    const pal = diverging ? DIVERGING : PALETTE;
    const br = diverging ? symmetricBreaks(gj.features.map((f) => f.properties.value)) : breaks(gj.features.map((f) => f.properties.value));
    m.closePopup();
    m.eachLayer((l) => { if (l instanceof L.Popup) { m.removeLayer(l); } });
    if (mapLayers.regions) { m.removeLayer(mapLayers.regions); }
    if (mapLayers.legend) { mapLayers.legend.remove(); }
    mapLayers.regions = L.geoJSON(gj, { style: (f) => ({ color: "#777", weight: 0.6, fillOpacity: 0.85, fillColor: colour(f.properties.value, br, pal) }),
      onEachFeature: (f, l) => l.bindPopup(regionPopup(f.properties, gj.meta)) }).addTo(m);
    mapLayers.regions.bringToBack();
    if (mapLayers.countries) { mapLayers.countries.bringToBack(); }  // partners' regions over their countries
    const years = [...new Set(gj.features.map((f) => f.properties.year).filter((y) => y))].sort();
    const anyApprox = gj.features.some((f) => f.properties.approximate);
    let html = `<b>${esc(state.lang === "en" ? gj.meta.en : gj.meta.ru)}${gj.meta.commodity ? ": " + esc(state.lang === "en" ? gj.meta.commodity_en : gj.meta.commodity_ru) : ""}</b>` +
      `<br>${esc(gj.meta.unit)}; ${t("year")} ${years.join(", ")}${anyApprox ? "; " + t("approximate") : ""}<br>`;
    const edges = [null].concat(br);
    pal.forEach((c, i) => { if (i < edges.length) { html += `<i style="background:${c}"></i> ${i === 0 ? "&lt; " + num(br[0], 2) : "≥ " + num(edges[i], 2)}<br>`; } });
    html += `<i style="background:#e6e6e6"></i> ${t("no_data")}<br>` +
      `<span class="line road"></span> ${t("corridor_road")} <span class="line rail"></span> ${t("corridor_rail")}<br>` +
      `<i class="dot" style="background:#2ecc71"></i> ${t("crossing_open")} <i class="dot" style="background:#e74c3c"></i> ${t("crossing_closed")}<br>` +
      `<i class="dot" style="background:#8e44ad"></i> ${t("existing_centre")} <i class="dot" style="background:#f1c40f"></i> ${t("wholesale_market")}<br>` +
      `<i class="dot" style="background:#e67e22"></i> ${t("candidate")}<br>` +
      `<i style="background:#e9e4d8"></i> ${t("partner_countries")}`;
    mapLayers.legend = legendControl(m, html);
  }
  async function drawScenarioLayers(m) {
    const sc = await api(`/datasets/layers/scenario?scenario=${encodeURIComponent($("#map-scenario").value || "ncfd_expansion")}`);
    if (state.maps.map !== m) { return; }
    ["crossings", "candidates"].forEach((k) => { if (mapLayers[k]) { m.removeLayer(mapLayers[k]); } });
    mapLayers.candidates = candidateLayer(sc.candidates).addTo(m);
    mapLayers.crossings = crossingLayer(sc.crossings).addTo(m);
  }
  $("#indicator").addEventListener("change", () => drawRegions(state.maps.map));
  $("#commodity").addEventListener("change", () => drawRegions(state.maps.map));
  $("#map-scenario").addEventListener("change", () => drawScenarioLayers(state.maps.map));

  // ------------------------------------------------------------------ scenarios view
  const form = $("#scenario-form");
  async function viewScenarios() {
    const [lib, stored] = await Promise.all([api("/library"), api("/scenarios")]);
    if (!state.params) { state.params = await api("/parameters"); }
    if (!state.crossings) { state.crossings = (await api("/datasets/layers/crossings")).features.map((f) => f.properties); }
    $("#library-list").innerHTML = lib.map((s) => `<li><a href="#scenarios" data-lib="${s.name}">${esc(s.name)}</a><br><small>${esc(state.lang === "en" ? s.title_en : s.title_ru)}</small></li>`).join("");
    $("#stored-list").innerHTML = stored.filter(notLibraryFile).map((s) => `<li><a href="#scenarios" data-stored="${s.id}">${esc(s.name)}</a> <small>${esc(s.created.slice(0, 16).replace("T", " "))}</small></li>`).join("");
    document.querySelectorAll("[data-lib]").forEach((a) => a.addEventListener("click", async (ev) => { ev.preventDefault(); const s = await api("/library/" + a.dataset.lib); loadForm(s.body, "library", s.name); }));
    document.querySelectorAll("[data-stored]").forEach((a) => a.addEventListener("click", async (ev) => { ev.preventDefault(); const s = await api("/scenarios/" + a.dataset.stored); loadForm(s.body, "stored", s.id); }));
    if (!state.form.body) { const s = await api("/library/" + (lib.find((x) => x.name === "ncfd_expansion") || lib[0]).name); loadForm(s.body, "library", s.name); } else { loadForm(state.form.body, state.form.kind, state.form.source); }
  }
  // GET /scenarios lists the library files too (read-only, id = file name); the page shows them in the library list
  function notLibraryFile(s) { return !(s.library && s.id === s.name); }
  function boxes(el, items, checked, name) {
    el.innerHTML = items.map((it) => `<label><input type="checkbox" name="${name}" value="${it.key}" ${checked(it.key) ? "checked" : ""}> ${esc(it.label)}</label>`).join("");
  }
  function loadForm(body, kind, source) {
    state.form = { body: JSON.parse(JSON.stringify(body)), kind, source, dirty: false };
    clearErrors(); $("#form-status").textContent = ""; $("#yaml-view").hidden = true;
    $("#form-source").textContent = `${source} (${kind === "library" ? t("library") : t("stored")})`;
    const f = form.elements; const b = state.form.body; const scope = b.scope || {}; const obj = b.objective || {};
    f.name.value = b.name || ""; f.title_ru.value = b.title_ru || ""; f.title_en.value = b.title_en || "";
    f.countries.value = (scope.countries || []).join(", "); f.regions.value = (scope.regions || []).join(", ");
    f.objective_type.value = obj.type || "cost"; f.p.value = obj.p === undefined || obj.p === null ? "" : obj.p;
    f.budget_mrub.value = obj.budget_mrub === undefined || obj.budget_mrub === null ? "" : obj.budget_mrub;
    f.force_existing.checked = obj.force_existing !== false;
    f.time_limit_s.value = (b.solver || {}).time_limit_s || "";
    boxes($("#fd-boxes"), VOCAB.districts.map((d) => ({ key: d.key, label: `${d.key} — ${nm(d)}` })), (k) => (scope.federal_districts || []).includes(k), "fd");
    const groups = b.commodities || VOCAB.commodities.map((c) => c.key);
    boxes($("#commodity-boxes"), VOCAB.commodities.map((c) => ({ key: c.key, label: nm(c) })), (k) => groups.includes(k), "group");
    const borders = b.borders || {};
    boxes($("#border-boxes"), state.crossings.map((c) => ({ key: c.crossing_id, label: `${nm(c)} (${c.country_a}–${c.country_b})` })), (k) => !borders[k] || borders[k].open !== false, "crossing");
    const exits = b.exits || [];
    const val = (v) => (v === undefined || v === null ? "" : v);
    $("#exit-table tbody").innerHTML = exits.map((x, i) => {
      const m = VOCAB.markets.find((q) => q.market_id === x.market) || {};
      const name = x.market ? `${esc(nm(m) || x.market)} (${esc(x.market)})` : esc(x.town || "");
      return `<tr class="field" data-loc="exits.${i}"><td>${name}<span class="field-error"></span></td>` +
        ["tariff_export_pct", "tariff_import_pct"].map((k) => `<td class="field" data-loc="exits.${i}.${k}"><input type="number" step="any" min="0" max="500" name="exit:${i}:${k}" value="${val(x[k])}" placeholder="${val(m[k])}"><span class="field-error"></span></td>`).join("") +
        `<td><small>${esc(m.tariff_basis || "")}</small></td></tr>`;
    }).join("");
    const params = b.parameters || {};
    $("#param-table tbody").innerHTML = state.params.map((p) => `<tr class="field" data-loc="parameters.${p.name}"><td title="${esc(p.description)}">${esc(p.name)}</td>` +
      `<td><input type="number" step="any" name="param:${p.name}" value="${params[p.name] === undefined ? "" : params[p.name]}" placeholder="${p.default}"` +
      `${p.minimum === null ? "" : ` min="${p.minimum}"`}${p.maximum === null ? "" : ` max="${p.maximum}"`}><span class="field-error"></span></td>` +
      `<td>${esc(p.unit)}</td><td>${p.minimum === null ? "−∞" : p.minimum} … ${p.maximum === null ? "∞" : p.maximum}</td><td title="${esc(p.source)}">${p.default}</td></tr>`).join("");
    if (state.form.kind === "library") { $("#save-as-name").value = (b.name || "scenario") + "_copy"; } else { $("#save-as-name").value = b.name || ""; }
  }
  function listOf(text) { return text.split(/[,;\s]+/).map((x) => x.trim()).filter((x) => x); }
  function numOrText(v) { return v === "" ? undefined : (Number.isNaN(Number(v)) ? v : Number(v)); }
  function formBody() {
    const f = form.elements; const b = JSON.parse(JSON.stringify(state.form.body || {}));
    b.name = f.name.value.trim();
    ["title_ru", "title_en"].forEach((k) => { if (f[k].value.trim()) { b[k] = f[k].value.trim(); } else { delete b[k]; } });
    b.scope = { countries: listOf(f.countries.value), federal_districts: [...document.querySelectorAll("input[name=fd]:checked")].map((x) => x.value), regions: listOf(f.regions.value) };
    b.commodities = [...document.querySelectorAll("input[name=group]:checked")].map((x) => x.value);
    b.objective = Object.assign({}, b.objective || {}, { type: f.objective_type.value, force_existing: f.force_existing.checked });
    const p = numOrText(f.p.value); if (p === undefined) { delete b.objective.p; } else { b.objective.p = p; }
    const bud = numOrText(f.budget_mrub.value); if (bud === undefined) { delete b.objective.budget_mrub; } else { b.objective.budget_mrub = bud; }
    const tl = numOrText(f.time_limit_s.value); b.solver = Object.assign({}, b.solver || {}); if (tl !== undefined) { b.solver.time_limit_s = tl; }
    const borders = Object.assign({}, b.borders || {});
    document.querySelectorAll("input[name=crossing]").forEach((x) => {
      if (!x.checked) { borders[x.value] = Object.assign({}, borders[x.value] || {}, { open: false }); } else if (borders[x.value]) { borders[x.value].open = true; }
    });
    b.borders = borders;
    if (Array.isArray(b.exits)) {
      b.exits = b.exits.map((x) => Object.assign({}, x));
      document.querySelectorAll("input[name^='exit:']").forEach((inp) => {
        const [, i, k] = inp.name.split(":"); const v = numOrText(inp.value);
        if (v === undefined) { delete b.exits[Number(i)][k]; } else { b.exits[Number(i)][k] = v; }
      });
    }
    const params = {};
    document.querySelectorAll("input[name^='param:']").forEach((x) => { const v = numOrText(x.value); if (v !== undefined) { params[x.name.slice(6)] = v; } });
    b.parameters = params;
    return b;
  }
  function clearErrors() { form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; }); form.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid")); $("#form-error").textContent = ""; }
  function showErrors(err) {
    clearErrors();
    const detail = err.data && Array.isArray(err.data.detail) ? err.data.detail : [{ loc: [], msg: err.data && err.data.detail ? err.data.detail : err.message, msg_ru: err.data && err.data.detail_ru }];
    let placed = 0; const rest = [];
    detail.forEach((d) => {
      let loc = (d.loc || []).filter((x) => x !== "body" && x !== "scenario");
      const m = /field '([^']+)'/.exec(d.msg || "") || /^([a-z_]+\.[a-z_.]+):/.exec(d.msg || "");
      if (!loc.length && m) { loc = m[1].split("."); }
      let el = null;
      for (let n = loc.length; n > 0 && !el; n--) { el = form.querySelector(`.field[data-loc="${CSS.escape(loc.slice(0, n).join("."))}"]`); }
      if (el) {
        el.classList.add("invalid"); placed++;
        const box = el.querySelector(".field-error"); box.textContent = (box.textContent ? box.textContent + "; " : "") + itemMsg(d);
        if (el.tagName === "TR") { const det = el.closest("details"); if (det) { det.open = true; } }
      } else { rest.push((loc.length ? loc.join(".") + ": " : "") + itemMsg(d)); }
    });
    $("#form-error").textContent = t("fix_fields") + (rest.length ? ": " + rest.join("; ") : "");
    return placed;
  }
  $("#save-as").addEventListener("click", async () => {
    const b = formBody(); const name = $("#save-as-name").value.trim(); if (name) { b.name = name; form.elements.name.value = name; }
    try {
      const s = await api("/scenarios", { method: "POST", json: b });
      clearErrors(); loadForm(s.body, "stored", s.id);
      $("#form-status").textContent = `${t("saved")}: ${s.name} (${s.id})`;
      const stored = await api("/scenarios");
      $("#stored-list").innerHTML = stored.filter(notLibraryFile).map((x) => `<li><a href="#scenarios" data-stored="${x.id}">${esc(x.name)}</a> <small>${esc(x.created.slice(0, 16).replace("T", " "))}</small></li>`).join("");
      document.querySelectorAll("[data-stored]").forEach((a) => a.addEventListener("click", async (ev) => { ev.preventDefault(); const r = await api("/scenarios/" + a.dataset.stored); loadForm(r.body, "stored", r.id); }));
    } catch (e) { showErrors(e); }
  });
  $("#run-now").addEventListener("click", async () => {
    try {
      const payload = state.form.kind === "stored" && sameAsStored() ? { scenario_id: state.form.source } : { scenario: formBody() };
      const r = await api("/runs", { method: "POST", json: payload });
      location.hash = "#run/" + r.id;
    } catch (e) { showErrors(e); }
  });
  // a stored scenario runs as itself (by id) until the planner edits a field; the server normalises what it stores,
  // so comparing the form with the stored body would call a just-saved scenario edited
  ["input", "change"].forEach((ev) => form.addEventListener(ev, () => { if (state.form) { state.form.dirty = true; } }));
  function sameAsStored() { return !state.form.dirty; }
  function yamlPath() { return state.form.kind === "library" ? `/library/${state.form.source}/yaml` : `/scenarios/${state.form.source}/yaml`; }
  $("#show-yaml").addEventListener("click", async () => {
    const pre = $("#yaml-view"); pre.hidden = false; pre.textContent = await api(yamlPath());
  });
  $("#download-yaml").addEventListener("click", () => download(yamlPath(), (state.form.body.name || "scenario") + ".yaml"));

  // ------------------------------------------------------------------ runs list
  async function viewRuns() {
    const st = $("#runs-status").value; const nmf = $("#runs-scenario").value.trim();
    const q = new URLSearchParams({ limit: "20", offset: String(state.runsOffset) });
    if (st) { q.set("status", st); } if (nmf) { q.set("scenario_name", nmf); }
    const page = await api("/runs?" + q);
    $("#runs-table tbody").innerHTML = page.items.map((r) => `<tr><td><a href="#run/${r.id}">${r.id.slice(0, 8)}</a></td><td>${esc(r.scenario_name)}</td>` +
      `<td class="st-${r.status}">${t("st_" + r.status)}</td><td>${esc(progressText(r.progress))}</td><td>${r.gap === null ? "—" : num(100 * r.gap, 2) + " %"}</td><td>${esc(r.created.slice(0, 19).replace("T", " "))}</td></tr>`).join("");
    $("#runs-page").textContent = `${page.total ? page.offset + 1 : 0}–${page.offset + page.items.length} / ${page.total}`;
    $("#runs-prev").disabled = page.offset === 0; $("#runs-next").disabled = page.offset + page.items.length >= page.total;
  }
  $("#runs-status").addEventListener("change", () => { state.runsOffset = 0; viewRuns(); });
  $("#runs-scenario").addEventListener("change", () => { state.runsOffset = 0; viewRuns(); });
  $("#runs-prev").addEventListener("click", () => { state.runsOffset = Math.max(0, state.runsOffset - 20); viewRuns(); });
  $("#runs-next").addEventListener("click", () => { state.runsOffset += 20; viewRuns(); });

  // ------------------------------------------------------------------ one run: progress, result
  function stopPoll() { if (state.poll) { clearTimeout(state.poll); state.poll = null; } }
  function elapsed(r) {
    if (!r.started) { return "0 " + t("seconds"); }
    const end = r.finished ? Date.parse(r.finished) : Date.now();
    return num(Math.max(0, (end - Date.parse(r.started)) / 1000), 0) + " " + t("seconds");
  }
  async function openRun(id) {
    $("#run-id").textContent = id.slice(0, 8); $("#run-result").hidden = true; $("#run-error").textContent = "";
    $("#run-result").dataset.ready = ""; $("#run-status").dataset.status = ""; $("#run-status").textContent = "";
    $("#run-progress").textContent = ""; $("#run-gap").textContent = "—"; $("#run-bar").style.width = "0";
    const limit = { v: null };  // the run's solver.time_limit_s (GET /runs gives it), s
    const tick = async () => {
      let r;
      try { r = await api("/runs/" + id); } catch (e) { $("#run-error").textContent = e.message; return; }
      $("#run-status").textContent = t("st_" + r.status); $("#run-status").className = "st-" + r.status;
      $("#run-status").dataset.status = r.status;
      $("#run-progress").textContent = progressText(r.progress); $("#run-elapsed").textContent = elapsed(r);
      $("#run-gap").textContent = r.gap === null ? "—" : num(100 * r.gap, 3) + " %";
      const done = !["queued", "running"].includes(r.status);
      const secs = r.started ? ((r.finished ? Date.parse(r.finished) : Date.now()) - Date.parse(r.started)) / 1000 : 0;
      // the bar runs against the run's own time limit (the solve stops there at the latest; building the model
      // comes before it): 5 % at the start, 95 % at the limit, full when done
      $("#run-bar").style.width = done ? "100%" : (limit.v ? Math.min(95, 5 + (90 * secs) / limit.v) : 5) + "%";
      $("#run-bar").dataset.limit = limit.v || "";
      $("#run-bar").className = "bar-" + r.status;
      $("#run-cancel").hidden = done || (state.role !== "planner" && state.role !== "admin");
      if (r.error) { $("#run-error").textContent = (state.lang === "ru" && r.error_ru) || r.error; }
      if (done) { if (r.status === "succeeded") { showResult(id); } return; }
      state.poll = setTimeout(tick, 700);
    };
    try {
      const runs = await api(`/runs?limit=200`); const it = runs.items.find((x) => x.id === id);
      $("#run-scenario").textContent = it ? it.scenario_name : ""; limit.v = it ? it.time_limit_s : null;
    } catch (e) { /* the title and the bar's scale are optional */ }
    tick();
  }
  $("#run-cancel").addEventListener("click", async () => {
    const id = location.hash.split("/")[1];
    try { await api("/runs/" + id, { method: "DELETE" }); } catch (e) { $("#run-error").textContent = e.message; }
  });
  function centreMarkers(gj) {
    const centres = gj.features.filter((f) => f.properties.layer === "centre");
    const top = Math.max(1, ...centres.map((f) => f.properties.throughput_t || 0));
    const util = (p) => (p.utilisation !== undefined ? p.utilisation : (p.utilisation_pct || 0) / 100);
    return L.geoJSON({ type: "FeatureCollection", features: centres }, {
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5 + 20 * Math.sqrt((f.properties.throughput_t || 0) / top), color: "#222", weight: 1, fillOpacity: 0.85,
        fillColor: utilColour(util(f.properties)) }),
      onEachFeature: (f, l) => { const p = f.properties; l.bindPopup(`<b>${esc(p.name_ru)}</b><br><i>${esc(p.name_en)}</i><br>${esc(p.id || p.site_id)}, ${p.existing ? t("existing_centre") : t("lay_opened")}<br>` +
        `${t("throughput_t")}: ${num(p.throughput_t, 0)}; ${t("utilisation")}: ${num(100 * util(p), 0)} %`); } });
  }
  function utilColour(u) { u = u || 0; return u >= 0.9 ? "#c0392b" : u >= 0.6 ? "#e67e22" : u >= 0.3 ? "#f1c40f" : "#3498db"; }
  const flowTonnes = (p) => (p.tonnes !== undefined ? p.tonnes : p.tonnes_t) || 0;
  // px: the largest flow of the run 8 px, the width growing as the square root of the tonnes (a small group's flows
  // stay visible beside a large one's)
  const flowWidth = (tonnes, top) => 1 + 7 * Math.sqrt(Math.max(0, tonnes) / top);
  function flowLines(gj) {
    /* The run's flows along their network routes, one layer per commodity group in the group's colour, width by
       tonnes a year against the run's largest flow. Returns {top, groups: [{key, colour, tonnes, layer}]}. */
    const flows = gj.features.filter((f) => f.properties.layer === "flow");
    const top = Math.max(1, ...flows.map((f) => flowTonnes(f.properties)));
    const keys = [...new Set(flows.map((f) => f.properties.commodity))]
      .sort((a, b) => VOCAB.commodities.findIndex((x) => x.key === a) - VOCAB.commodities.findIndex((x) => x.key === b));
    const groups = keys.map((g) => {
      const part = flows.filter((f) => f.properties.commodity === g).sort((a, b) => flowTonnes(b.properties) - flowTonnes(a.properties));
      const colour = groupColour(g);
      const layer = L.geoJSON({ type: "FeatureCollection", features: part }, {
        style: (f) => ({ color: colour, opacity: 0.7, weight: flowWidth(flowTonnes(f.properties), top), className: "flow flow-" + g }),
        onEachFeature: (f, l) => l.bindPopup(`<b>${esc(f.properties["commodity_" + state.lang] || commodityName(f.properties.commodity))}</b>: ${num(flowTonnes(f.properties), 0)} ${t("tonnes")} (${esc(f.properties["kind_" + state.lang] || flowKind(f.properties.kind))})` +
          (f.properties.from_ru ? `<br>${esc(state.lang === "en" ? f.properties.from_en : f.properties.from_ru)} → ${esc(state.lang === "en" ? f.properties.to_en : f.properties.to_ru)}` : "")) });
      return { key: g, colour, tonnes: part.reduce((s, f) => s + flowTonnes(f.properties), 0), layer };
    });
    return { top, groups };
  }
  function roundNice(v) { const e = Math.pow(10, Math.floor(Math.log10(Math.max(v, 1)))); return Math.round(v / e) * e; }
  function flowLegend(fl) {
    /* The flows' part of a result map's legend: a colour per group present, and a width scale in t a year. */
    if (!fl.groups.length) { return ""; }
    const samples = [fl.top, fl.top / 10, fl.top / 100].map(roundNice).filter((v, i, a) => v > 0 && a.indexOf(v) === i);
    return `<b>${t("lay_flows")}</b> (${t("flow_by_group")})<br>` +
      fl.groups.map((g) => `<span class="line flow-key" data-group="${esc(g.key)}" style="border-top:4px solid ${g.colour}"></span> ${esc(commodityName(g.key))}`).join("<br>") +
      `<br>${t("flow_width")}, ${t("tonnes")}:<br>` +
      samples.map((v) => `<span class="line" style="border-top:${Math.max(1, flowWidth(v, fl.top)).toFixed(1)}px solid #555"></span> ${num(v, 0)}`).join(" ");
  }
  const TRADE_COLOURS = { crossing: "#6a3d9a", port: "#1f78b4", border: "#b15928", rest_of_russia: "#7f7f7f" };
  function tradePopup(p) {
    /* A trade point's popup: names, kind, and tonnes a year by group into and out of the scope. */
    const kind = state.lang === "en" ? p.kind_en : p.kind_ru;
    const groups = Object.keys(p).filter((k) => /^imports_.+_t$/.test(k)).map((k) => k.slice(8, -2))
      .filter((g) => p["imports_" + g + "_t"] || p["exports_" + g + "_t"]);
    const rows = groups.map((g) => `<tr><td>${esc(commodityName(g))}</td><td>${num(p["imports_" + g + "_t"], 0)}</td><td>${num(p["exports_" + g + "_t"], 0)}</td></tr>`).join("");
    return `<b>${esc(p.name_ru)}</b><br><i>${esc(p.name_en)}</i><br>${esc(kind)} (${esc(p.country_id)})<br>` +
      `<table class="trade"><tr><th>${t("g_group")}</th><th>${t("trade_in")}, ${t("tonnes")}</th><th>${t("trade_out")}, ${t("tonnes")}</th></tr>${rows}` +
      `<tr><th>${t("trade_total")}</th><th>${num(p.imports_t, 0)}</th><th>${num(p.exports_t, 0)}</th></tr></table>` +
      `<small>${t("trade_note")}</small><br>` +
      (p.other_passing_t ? `${t("trade_within")}: ${num(p.other_passing_t, 0)} ${t("tonnes")}<br>` : "") +
      (p.via ? `<small>${t(p.kind === "crossing" ? "trade_via_markets" : "trade_via_crossings")}: ${esc((state.lang === "en" ? p.via_en : p.via_ru) || p.via)}</small>` : "");
  }
  function tradeMarkers(gj) {
    const pts = gj.features.filter((f) => f.properties.layer === "trade");
    const top = Math.max(1, ...pts.map((f) => f.properties.total_t || 0));
    return L.geoJSON({ type: "FeatureCollection", features: pts.sort((a, b) => b.properties.total_t - a.properties.total_t) }, {
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 4 + 22 * Math.sqrt((f.properties.total_t || 0) / top), color: TRADE_COLOURS[f.properties.kind] || "#6a3d9a",
        weight: 2.5, fillOpacity: 0.12 }),
      onEachFeature: (f, l) => l.bindPopup(tradePopup(f.properties)) });
  }
  function runMap(el, gj) {
    const m = baseMap(el);
    if (state.countries) { countriesLayer().then((c) => { if (state.maps[el] === m) { c.addTo(m); c.bringToBack(); } }); }
    const regions = gj.features.filter((f) => f.properties.layer === "region");
    L.geoJSON({ type: "FeatureCollection", features: regions }, { style: (f) => ({ color: "#999", weight: 0.5, fillColor: f.properties.in_scope ? "#e3efd9" : "#f4f4f0", fillOpacity: 1 }),
      onEachFeature: (f, l) => l.bindPopup(`<b>${esc(f.properties.name_ru || "")}</b><br><i>${esc(f.properties.name_en || "")}</i> (${esc(f.properties.region_id || "")})` +
        (f.properties.outline_approximate ? `<br><span class="approx">${t("outline_schematic")}</span>` : "")) }).addTo(m);
    corridorLayer({ type: "FeatureCollection", features: gj.features.filter((f) => f.properties.layer === "corridor") }).addTo(m)
      .setStyle({ opacity: 0.35, weight: 1.5 });  // under the flows, the corridors step back
    const fl = flowLines(gj);
    [...fl.groups].sort((a, b) => b.tonnes - a.tonnes).forEach((g) => g.layer.addTo(m));  // the smaller groups on top
    const tr = tradeMarkers(gj).addTo(m);
    const cm = centreMarkers(gj).addTo(m);
    const ov = {};
    fl.groups.forEach((g) => { ov[`<span class="flow-overlay" data-group="${esc(g.key)}"><i class="swatch" style="background:${g.colour}"></i> ${esc(t("lay_flows"))}: ${esc(commodityName(g.key))}</span>`] = g.layer; });
    ov[t("lay_opened")] = cm; ov[t("lay_trade")] = tr;
    L.control.layers(null, ov, { collapsed: true }).addTo(m);
    legendControl(m, `<b>${t("lay_opened")}</b><br>${t("throughput_t")} ∝ r²<br>` +
      [["#3498db", "< 30 %"], ["#f1c40f", "30–60 %"], ["#e67e22", "60–90 %"], ["#c0392b", "≥ 90 %"]].map(([c, l]) => `<i class="dot" style="background:${c}"></i> ${t("utilisation")} ${l}`).join("<br>") +
      `<br><b>${t("lay_trade")}</b>, ${t("tonnes")} ∝ r²<br>` +
      [["crossing", "trade_crossing"], ["port", "trade_port"], ["border", "trade_market"], ["rest_of_russia", "trade_rest"]]
        .map(([k, l]) => `<i class="ring" style="border-color:${TRADE_COLOURS[k]}"></i> ${t(l)}`).join("<br>"));
    if (fl.groups.length) { legendControl(m, flowLegend(fl), "bottomleft", "legend flows-legend"); }
    const b = cm.getBounds(); if (b.isValid()) { m.fitBounds(b.pad(0.6), { animate: false }); }
    return m;
  }
  async function showResult(id) {
    const [res, gj, files] = await Promise.all([api(`/runs/${id}/result`), api(`/runs/${id}/geojson`), api(`/runs/${id}/files`)]);
    const s = res.summary; const centres = s.centres || [];
    if (s.scenario) { $("#run-scenario").textContent = s.scenario; }
    $("#run-result").hidden = false;
    const rows = [["h_status", `<span data-status="${esc(s.status)}">${esc(statusName(s.status))}</span>`], ["h_objective", num(s.objective, 0)], ["h_gap", s.gap === null ? "—" : num(100 * s.gap, 3) + " %"],
      ["h_runtime", num(s.runtime_seconds, 1)], ["h_centres", centres.length], ["h_new", centres.filter((c) => !c.existing).length],
      ["h_nsb", num(s.net_social_benefit_mrub, 1)], ["h_lost_value", num(s.lost_value_rub, 0)]];
    const inv = (s.investor || {}).totals || {};
    if (inv.capital_new_rub !== undefined) {
      rows.push(["h_capital", num(inv.capital_new_rub / 1e6, 1)], ["h_public", num(inv.public_cofinancing_new_rub / 1e6, 1)],
        ["h_npv", num(inv.npv_new_rub / 1e6, 1)], ["h_operating", num(inv.operating_result_rub / 1e6, 1)]);
    }
    $("#headline").innerHTML = rows.map(([k, v]) => `<tr><th>${t(k)}</th><td>${v}</td></tr>`).join("");
    $("#centres-table").innerHTML = `<tr><th>id</th><th>${t("c_name")}</th><th>${t("c_region")}</th><th>${t("c_existing")}</th><th>${t("c_size")}</th><th>${t("c_capacity")}</th><th>${t("c_throughput")}</th><th>${t("c_util")}</th></tr>` +
      centres.map((c) => `<tr><td>${esc(c.id)}</td><td>${esc(nm(c))}</td><td>${esc(c.region)}</td><td>${c.existing ? t("yes") : t("no")}</td><td>${esc(sizeName(c.size))}</td><td>${num(c.capacity_t, 0)}</td><td>${num(c.throughput_t, 0)}</td><td>${num(100 * (c.utilisation || 0), 0)}</td></tr>`).join("");
    const costs = s.cost_breakdown || {};
    $("#costs-table").innerHTML = `<tr><th>${t("cost_item")}</th><th>${t("cost_value")}</th></tr>` + Object.entries(costs).map(([k, v]) => `<tr><td>${esc(costName(k))}</td><td>${num(v, 0)}</td></tr>`).join("");
    const groups = Object.keys(s.loss_reduction_pct || s.loss_tonnes || {});
    $("#groups-table").innerHTML = `<tr><th>${t("g_group")}</th><th>${t("g_loss_base")}</th><th>${t("g_loss_net")}</th><th>${t("g_loss_red")}</th><th>${t("g_price")}</th></tr>` +
      groups.map((g) => `<tr><td>${esc(commodityName(g))}</td><td>${num((s.loss_tonnes_baseline || {})[g], 0)}</td><td>${num((s.loss_tonnes_network || {})[g], 0)}</td><td>${num((s.loss_reduction_pct || {})[g], 1)}</td><td>${num((s.price_change_pct || {})[g], 2)}</td></tr>`).join("");
    investorView(s);
    $("#charts").innerHTML = barChart(t("g_loss_red"), groups.map((g) => ({ label: commodityName(g), value: (s.loss_reduction_pct || {})[g] })), "", "loss") +
      barChart(t("g_price"), groups.map((g) => ({ label: commodityName(g), value: (s.price_change_pct || {})[g] })), "", "price") +
      barChart(t("ch_costs"), Object.entries(costs).map(([k, v]) => ({ label: costName(k), value: v / 1e6 })), "", "costs", 1) +
      socialChart(s);
    const stageName = (k) => (window.ORC_STAGES[k] ? window.ORC_STAGES[k][state.lang] : k);
    const tb = res.tables || {};
    const lt = tb.losses_by_stage || (tb.losses || []).filter((r) => r.stage !== undefined);
    $("#stages-table").innerHTML = `<tr><th>${t("g_group")}</th><th>${t("stage")}</th><th>${t("l_base")}</th><th>${t("l_net")}</th><th>${t("l_saved")}</th></tr>` +
      lt.map((r) => `<tr><td>${esc(commodityName(r.commodity))}</td><td>${esc(r["stage_" + state.lang] || stageName(r.stage))}</td><td>${num(r.baseline_t, 0)}</td><td>${num(r.network_t, 0)}</td><td>${num(r.saved_t, 0)}</td></tr>`).join("");
    const pt = tb.prices || [];
    const pick = (r, a, b) => (r[a] !== undefined ? r[a] : r[b]);
    $("#prices-table").innerHTML = `<tr><th>${t("g_group")}</th><th>${t("c_region")}</th><th>${t("pr_cons_base")}</th><th>${t("pr_cons_net")}</th><th>${t("pr_cons_chg")}</th><th>${t("pr_farm_chg")}</th></tr>` +
      pt.map((r) => `<tr><td>${esc(commodityName(r.commodity))}</td><td>${esc(r["region_" + state.lang] || r.region_id)}</td><td>${num(pick(r, "consumer_price_base", "consumer_price_base_rub_per_t"), 0)}</td><td>${num(pick(r, "consumer_price_network", "consumer_price_network_rub_per_t"), 0)}</td><td>${num(r.consumer_price_change_pct, 2)}</td><td>${num(r.farm_price_change_pct, 2)}</td></tr>`).join("");
    $("#downloads").innerHTML = files.map((f) => `<li><a href="#run/${id}" data-file="${esc(f.name)}">${esc(f.name)}</a> <small>${num(f.bytes / 1024, 1)} KB</small></li>`).join("");
    document.querySelectorAll("[data-file]").forEach((a) => a.addEventListener("click", (ev) => { ev.preventDefault(); download(`/runs/${id}/files/${a.dataset.file}`, `${id.slice(0, 8)}_${a.dataset.file}`); }));
    runMap("run-map", gj);
    $("#run-result").dataset.ready = "1";
  }

  function investorView(s) {
    /* The investor's view per centre (summary.investor, planner/economics: capital, public support, the
       investor's own capital, operating result a year, NPV at the investor's discount rate without and with the
       preferential loan, payback) and the totals of the new centres; hidden for a run without it. */
    const inv = s.investor || {}; const rows = inv.centres || []; const tot = inv.totals || {};
    $("#investor").hidden = !rows.length;
    if (!rows.length) { $("#investor-table").innerHTML = ""; $("#investor-note").textContent = ""; return; }
    const byId = Object.fromEntries((s.centres || []).map((c) => [c.id, c]));
    const mr = (v) => num(v === null || v === undefined ? null : v / 1e6, 1);
    const storeType = (c) => {  // the short name of the store type (its full name in the cell's title)
      const T = window.ORC_STORE_TYPES; if (!c) { return ""; }
      const full = (state.lang === "en" ? c.store_type_en : c.store_type_ru) || c.store_type || "";
      return `<span title="${esc(full)}">${esc(T[c.store_type] ? T[c.store_type][state.lang] : full)}</span>`;
    };
    $("#investor-table").innerHTML = `<tr><th>${t("c_name")}</th><th>${t("inv_type")}</th><th>${t("c_size")}</th><th>${t("c_throughput")}</th>` +
      `<th>${t("inv_capital")}</th><th>${t("inv_public")}</th><th>${t("inv_own")}</th><th>${t("inv_operating")}</th>` +
      `<th>${t("inv_npv")}</th><th>${t("inv_npv_loan")}</th><th>${t("inv_payback")}</th></tr>` +
      rows.map((r) => `<tr data-site="${esc(r.id)}"><td>${esc(nm(r))}</td><td>${storeType(byId[r.id])}</td><td>${esc(sizeName(r.size))}</td><td>${num(r.throughput_t, 0)}</td>` +
        `<td>${mr(r.capital_rub)}</td><td>${mr(r.public_cofinancing_rub)}</td><td>${mr(r.investor_capital_rub)}</td><td>${mr(r.operating_result_rub)}</td>` +
        `<td class="${r.npv_rub < 0 ? "neg" : ""}">${mr(r.npv_rub)}</td><td class="${r.npv_with_loan_rub < 0 ? "neg" : ""}">${mr(r.npv_with_loan_rub)}</td>` +
        `<td>${!r.capital_rub ? "—" : (r.payback_years === null || r.payback_years === undefined ? t("inv_never") : num(r.payback_years, 1))}</td></tr>`).join("") +
      (tot.capital_new_rub !== undefined ? `<tr class="total"><th>${t("inv_total_new")}</th><td></td><td></td><td></td><td>${mr(tot.capital_new_rub)}</td><td>${mr(tot.public_cofinancing_new_rub)}</td>` +
        `<td>${mr(tot.capital_new_rub - tot.public_cofinancing_new_rub)}</td><td></td><td>${mr(tot.npv_new_rub)}</td><td>${mr(tot.npv_new_with_loan_rub)}</td><td></td></tr>` : "");
    const pct = (v) => (v === undefined || v === null ? "—" : num(v, 1) + " %");
    $("#investor-note").textContent = t("inv_note").replace("{d}", pct(tot.discount_rate_pct)).replace("{p}", pct(tot.preferential_loan_rate_pct))
      .replace("{m}", pct(tot.market_loan_rate_pct)).replace("{s}", pct(tot.public_support_pct));
  }
  function socialChart(s) {
    /* Net social benefit (million RUB a year) beside the investor's result of the new centres (NPV without and
       with the preferential loan, public support, million RUB): the public and the private view of one plan. */
    const soc = s.social || {}; const tot = (s.investor || {}).totals || {};
    const items = [];
    if (s.net_social_benefit_mrub !== undefined && s.net_social_benefit_mrub !== null) { items.push({ label: t("ch_nsb"), value: s.net_social_benefit_mrub }); }
    if (soc.social_npv_mrub !== undefined) { items.push({ label: t("ch_social_npv"), value: soc.social_npv_mrub }); }
    if (tot.npv_new_rub !== undefined) {
      items.push({ label: t("ch_npv"), value: tot.npv_new_rub / 1e6 }, { label: t("ch_npv_loan"), value: tot.npv_new_with_loan_rub / 1e6 },
        { label: t("ch_public"), value: tot.public_cofinancing_new_rub / 1e6 });
    }
    return items.length ? barChart(t("ch_social"), items, "", "social", 1) : "";
  }

  function barChart(title, items, unit, kind = "", digits = 2) {
    /* A horizontal bar chart as inline SVG: one bar per item, negative values to the left of zero; ``kind``
       names it (data-chart) and ``digits`` is the values' decimals. */
    const w = 600; const rowH = 22; const labelW = 200; const h = 26 + rowH * items.length;
    const maxAbs = Math.max(1e-9, ...items.map((i) => Math.abs(i.value || 0)));
    const neg = items.some((i) => (i.value || 0) < 0);
    const pad = neg ? 72 : 0;  // room for a negative bar's value left of it
    const span = (w - labelW - 72 - pad) * (neg ? 0.5 : 1); const zero = labelW + pad + (neg ? span : 0);
    let svg = `<svg class="chart" data-chart="${esc(kind)}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}"><text x="0" y="14" class="ct">${esc(title)}${unit ? ", " + esc(unit) : ""}</text>`;
    items.forEach((it, k) => {
      const v = it.value || 0; const len = (Math.abs(v) / maxAbs) * span; const y = 22 + k * rowH;
      const x = v < 0 ? zero - len : zero;
      const label = it.label.length > 26 ? it.label.slice(0, 25) + "…" : it.label;
      svg += `<text x="0" y="${y + 14}"><title>${esc(it.label)}</title>${esc(label)}</text><rect x="${x}" y="${y + 3}" width="${Math.max(1, len)}" height="${rowH - 8}" fill="${v < 0 ? "#c0392b" : "#2e7d32"}"></rect>` +
        `<text x="${v < 0 ? x - 4 : x + len + 4}" y="${y + 14}" text-anchor="${v < 0 ? "end" : "start"}">${num(v, digits)}</text>`;
    });
    svg += `<line x1="${zero}" x2="${zero}" y1="20" y2="${h}" stroke="#555"></line></svg>`;
    return svg;
  }

  // ------------------------------------------------------------------ compare
  async function viewCompare() {
    const page = await api("/runs?status=succeeded&limit=200");
    const opts = page.items.map((r) => `<option value="${r.id}">${esc(r.scenario_name)} · ${r.id.slice(0, 8)} · ${esc(r.created.slice(0, 16).replace("T", " "))}</option>`).join("");
    const a = $("#cmp-a").value; const b = $("#cmp-b").value;
    $("#cmp-a").innerHTML = opts; $("#cmp-b").innerHTML = opts;
    if (a) { $("#cmp-a").value = a; } if (b) { $("#cmp-b").value = b; } else if (page.items.length > 1) { $("#cmp-b").selectedIndex = 1; }
  }
  // The table of differences of planner.compare.compare_summaries (the same document `planner compare` prints):
  // centres opened, closed or resized by stable site identity; trade by border crossing and by country, t a year.
  function cmpTables(c) {
    const both = (o) => esc(o.name_ru === o.name_en || !o.name_en ? o.name_ru || o.id : `${o.name_ru} / ${o.name_en}`);
    const changeName = { "opened in B": t("cmp_opened"), "closed in B": t("cmp_closed"), resized: t("cmp_resized") };
    const moved = (c.centres || []).filter((x) => x.change !== "kept");
    const kept = (c.centres || []).length - moved.length;
    $("#cmp-centres").innerHTML = `<tr><th>${t("cmp_change")}</th><th>${t("c_name")}</th><th>${t("c_region")}</th><th>${t("cmp_size_ab")}</th><th>${t("cmp_thr_a")}</th><th>${t("cmp_thr_b")}</th></tr>` +
      moved.map((x) => `<tr data-change="${esc(x.change)}"><td>${changeName[x.change]}</td><td>${both(x)}</td><td>${esc(x.region)}</td><td>${esc(sizeName(x.size_a))} → ${esc(sizeName(x.size_b))}</td><td>${num(x.throughput_a_t, 0)}</td><td>${num(x.throughput_b_t, 0)}</td></tr>`).join("") +
      `<tr><td colspan="6">${t("cmp_kept")}: ${kept}</td></tr>`;
    const market = Object.fromEntries((c.trade_by_market || []).map((m) => [m.market, nm(m)]));
    const abc = (r, k) => `<td>${num(r[k + "_a_t"], 0)}</td><td>${num(r[k + "_b_t"], 0)}</td><td>${num(r[k + "_change_t"], 0)}</td>`;
    const head = (first) => `<tr><th rowspan="2">${first}</th><th rowspan="2">${t("cmp_markets")}</th><th colspan="3">${t("cmp_sells")}</th><th colspan="3">${t("cmp_buys")}</th></tr>` +
      `<tr><th>A</th><th>B</th><th>${t("cmp_change")}</th><th>A</th><th>B</th><th>${t("cmp_change")}</th></tr>`;
    const body = (rows, id) => rows.length ? rows.map((r) => `<tr data-id="${esc(r[id])}"><td>${both(r)}</td><td>${esc(r.markets.map((m) => market[m] || m).join("; "))}</td>${abc(r, "imports")}${abc(r, "exports")}</tr>`).join("")
      : `<tr><td colspan="8">${t("cmp_none")}</td></tr>`;
    $("#cmp-crossings").innerHTML = head(t("cmp_crossing")) + body(c.trade_by_crossing || [], "crossing");
    $("#cmp-countries").innerHTML = head(t("cmp_country")) + body(c.trade_by_country || [], "country");
  }
  function cmpPrices(pa, pb) {
    /* Consumer prices by region and group in A and B (the runs' prices tables): the price with the network, RUB/t,
       and its change against no network, %, each with B − A. */
    const key = (r) => r.commodity + "|" + r.region_id;
    const A = Object.fromEntries(pa.map((r) => [key(r), r])); const B = Object.fromEntries(pb.map((r) => [key(r), r]));
    const keys = [...new Set(pa.map(key).concat(pb.map(key)))];
    const price = (r) => (r ? (r.consumer_price_network !== undefined ? r.consumer_price_network : r.consumer_price_network_rub_per_t) : null);
    const chg = (r) => (r ? r.consumer_price_change_pct : null);
    const d = (x, y, digits) => (typeof x === "number" && typeof y === "number" ? signed(y - x, digits) : "—");
    $("#cmp-prices").innerHTML = `<tr><th rowspan="2">${t("g_group")}</th><th rowspan="2">${t("c_region")}</th><th colspan="3">${t("pr_cons_net")}</th><th colspan="3">${t("pr_cons_chg")}</th></tr>` +
      `<tr><th>A</th><th>B</th><th>${t("cmp_diff")}</th><th>A</th><th>B</th><th>${t("cmp_diff")}, ${t("pp")}</th></tr>` +
      (keys.length ? keys.map((k) => {
        const ra = A[k]; const rb = B[k]; const r = ra || rb;
        return `<tr data-id="${esc(k)}"><td>${esc(commodityName(r.commodity))}</td><td>${esc(r["region_" + state.lang] || r.region_id)}</td>` +
          `<td>${num(price(ra), 0)}</td><td>${num(price(rb), 0)}</td><td>${d(price(ra), price(rb), 0)}</td>` +
          `<td>${num(chg(ra), 2)}</td><td>${num(chg(rb), 2)}</td><td>${d(chg(ra), chg(rb), 2)}</td></tr>`;
      }).join("") : `<tr><td colspan="8">${t("cmp_none")}</td></tr>`);
  }
  $("#cmp-go").addEventListener("click", async () => {
    const a = $("#cmp-a").value; const b = $("#cmp-b").value; $("#cmp-error").textContent = "";
    if (!a || !b) { $("#cmp-error").textContent = t("cmp_need_two"); return; }
    let c;
    try { c = await api("/compare", { method: "POST", json: { run_a: a, run_b: b } }); } catch (e) { $("#cmp-error").textContent = e.message; return; }
    // a row: label, A, B and, for a figure, the difference B − A (its decimals ``d``; ``pp`` for percentage points)
    const fig = (label, va, vb, d, key, pp) => {
      const diff = typeof va === "number" && typeof vb === "number" ? vb - va : null;
      return [label, num(va, d), num(vb, d), diff === null ? "—" : signed(diff, d) + (pp ? " " + t("pp") : ""), key];
    };
    const rows = [[t("scenario"), esc(c.a.scenario), esc(c.b.scenario), "", "scenario"],
      [t("h_status"), esc(statusName(c.a.status)), esc(statusName(c.b.status)), "", "status"],
      fig(t("h_objective"), c.a.objective, c.b.objective, 0, "objective"),
      [t("h_gap"), c.a.gap === null ? "—" : num(100 * c.a.gap, 3) + " %", c.b.gap === null ? "—" : num(100 * c.b.gap, 3) + " %", "", "gap"],
      fig(t("h_centres"), c.a.centres.length, c.b.centres.length, 0, "centres")];
    const comps = [...new Set(Object.keys(c.a.cost_breakdown || {}).concat(Object.keys(c.b.cost_breakdown || {})))];
    comps.forEach((k) => rows.push(fig(`${t("cost_item")}: ${esc(costName(k))}, ${t("rub_year")}`, (c.a.cost_breakdown || {})[k], (c.b.cost_breakdown || {})[k], 0, "cost:" + k)));
    const gs = [...new Set(Object.keys(c.a.loss_reduction_pct || {}).concat(Object.keys(c.b.loss_reduction_pct || {})))];
    gs.forEach((g) => rows.push(fig(`${t("g_loss_red")}: ${esc(commodityName(g))}`, (c.a.loss_reduction_pct || {})[g], (c.b.loss_reduction_pct || {})[g], 1, "loss:" + g, true)));
    gs.forEach((g) => rows.push(fig(`${t("g_price")}: ${esc(commodityName(g))}`, (c.a.price_change_pct || {})[g], (c.b.price_change_pct || {})[g], 2, "price:" + g, true)));
    rows.push([t("cmp_only_a"), esc(c.only_a.join(", ")) || "—", "", "", "only_a"], [t("cmp_only_b"), "", esc(c.only_b.join(", ")) || "—", "", "only_b"]);
    $("#cmp-table").innerHTML = `<tr><th>${t("cmp_field")}</th><th>A</th><th>B</th><th>${t("cmp_diff")}</th></tr>` +
      rows.map((r) => `<tr data-row="${esc(r[4])}"><td>${r[0]}</td><td>${r[1]}</td><td>${r[2]}</td><td>${r[3]}</td></tr>`).join("");
    cmpTables(c);
    const [ga, gb, ra, rb] = await Promise.all([api(`/runs/${a}/geojson`), api(`/runs/${b}/geojson`), api(`/runs/${a}/result`), api(`/runs/${b}/result`)]);
    cmpPrices((ra.tables || {}).prices || [], (rb.tables || {}).prices || []);
    const ma = runMap("cmp-map-a", ga); const mb = runMap("cmp-map-b", gb);
    let syncing = false;
    const sync = (from, to) => from.on("moveend", () => { if (syncing) { return; } syncing = true; to.setView(from.getCenter(), from.getZoom(), { animate: false }); syncing = false; });
    sync(ma, mb); sync(mb, ma); mb.setView(ma.getCenter(), ma.getZoom(), { animate: false });
    $("#cmp-table").dataset.ready = "1";
  });

  // ------------------------------------------------------------------ start
  applyLang(); fillStatic();
  (async () => { if (key() && await signIn(key())) { route(); } else { show("signin"); } })();
})();
