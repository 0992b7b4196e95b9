"""The static map of a run (``map.png`` for screens, ``map.svg`` for print).

What it shows: the scope's regions coloured by the production of the scenario's own commodity groups (the one
quantity the scenario is about), the other Russian regions and the neighbouring countries in neutral tones so
that cross-border flows end somewhere, road and rail corridors, flows drawn along the corridors they use (line
width = tonnes a year on each segment, all groups together), centres (existing and new, marker by size), border
crossings (open or closed in this scenario), the trade at each crossing, port and outside market on the map (a
ring whose area is the tonnes a year in and out; a crossing labelled with them), a scale bar and a legend. A scope that
reaches into a partner country shows that country's first-level regions (Natural Earth; Kazakhstan's post-2018
units schematic). Projection: Lambert conformal conic with
standard parallels at one sixth and five sixths of the map's latitude span (the usual choice for a mid-latitude
map; lengths true along those parallels, so the scale bar holds across the map).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from adjustText import adjust_text  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib_scalebar.scalebar import ScaleBar  # noqa: E402
from shapely.affinity import translate  # noqa: E402
from shapely.geometry import LineString, Point, box  # noqa: E402

from planner.outputs.labels import commodity_names, fmt  # noqa: E402

NEW_COLOUR = "#d95f02"
EXISTING_COLOUR = "#7570b3"
FLOW_COLOUR = "#1f78b4"
TRADE_COLOUR = "#6a3d9a"
TRADE_MAX_AREA = 900.0
"""Marker area (pt²) of the trade point with the most tonnes; the others scale by area."""
MIN_LABEL_T = 500.0
"""Outside markets trading less than this (t a year; "0 thousand t" once rounded) get no label on the map."""
MAX_NAMED_CENTRES = 10
"""Above this many centres the map numbers them and names them in a key beside the legend."""
SIZE_MARKERS: dict[str, float] = {"existing": 70.0, "small": 60.0, "medium": 110.0, "large": 170.0}
"""Marker area (pt²) by centre size."""


def projection(bounds: tuple[float, float, float, float]) -> str:
    """Lambert conformal conic for a lon/lat box (standard parallels at 1/6 and 5/6 of its latitude span)."""
    x0, y0, x1, y1 = bounds
    span = max(y1 - y0, 1.0)
    lat1, lat2 = y0 + span / 6, y1 - span / 6
    return (f"+proj=lcc +lat_1={lat1:.2f} +lat_2={lat2:.2f} +lat_0={(y0 + y1) / 2:.2f} "
            f"+lon_0={(x0 + x1) / 2:.2f} +datum=WGS84 +units=m +no_defs")


def map_extent(layers: dict[str, gpd.GeoDataFrame]) -> tuple[float, float, float, float]:
    """Lon/lat box of the scope's regions and the opened centres, padded by 12% (at least 1°)."""
    parts = [layers["region_points"].geometry, layers["centres"].geometry]
    reg = layers["regions"]
    if not reg.empty and reg["in_scope"].any():
        parts.append(reg[reg["in_scope"]].geometry)
    geoms = gpd.GeoSeries(pd.concat(parts, ignore_index=True), crs=4326).explode(index_parts=False)
    b = geoms.bounds
    if (b["maxx"] < -90).any() and (b["minx"] > 0).any():
        # a scope east of Greenwich with parts past the antimeridian (Chukotka at -180…-169°): count those parts
        # at 180…191°, so the box, and the projection's central meridian, stay on the scope (not at 0°)
        geoms = gpd.GeoSeries([translate(g, xoff=360.0) if bb.maxx < -90 else g
                               for g, bb in zip(geoms, b.itertuples(), strict=True)], crs=4326)
    x0, y0, x1, y1 = geoms.total_bounds
    px, py = max((x1 - x0) * 0.12, 1.0), max((y1 - y0) * 0.12, 1.0)
    return (x0 - px, y0 - py, x1 + px, y1 + py)


def segment_tonnes(flows: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Flows summed per network segment (tonnes a year on each hop, every group and kind together)."""
    acc: dict[tuple, float] = {}
    for geom, t in zip(flows.geometry, flows["tonnes_t"].astype(float), strict=True):
        cs = list(geom.coords)
        for a, b in zip(cs[:-1], cs[1:], strict=True):
            key = (a, b) if a <= b else (b, a)
            acc[key] = acc.get(key, 0.0) + t
    if not acc:
        return gpd.GeoDataFrame({"tonnes_t": []}, geometry=[], crs=4326)
    return gpd.GeoDataFrame({"tonnes_t": list(acc.values())}, geometry=[LineString(k) for k in acc], crs=4326)


def _kt(tonnes: float) -> str:
    """Tonnes as thousand tonnes for a label: whole thousands, one decimal below 1,000 t (never a bare «0»)."""
    return fmt(tonnes / 1000, 0 if abs(tonnes) >= 1000 or tonnes == 0 else 1)


def _wrap(name: str, width: int = 24) -> str:
    """A label in lines of about ``width`` characters (whole words; never cut)."""
    return "\n".join(textwrap.wrap(name, width)) or name


def draw_map(layers: dict[str, gpd.GeoDataFrame], title_ru: str, title_en: str, commodities: list[str],
             paths: list[Path]) -> list[Path]:
    """Draw the run's map and save it to each of ``paths`` (the format from the suffix: .png, .svg, .pdf)."""
    ext = map_extent(layers)
    crs = projection(ext)
    frame_ll = box(*ext)
    frame = gpd.GeoSeries([frame_ll.segmentize(0.25)], crs=4326).to_crs(crs).total_bounds  # parallels curve

    def clip(g: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        if g.empty:
            return g.to_crs(crs)
        return g[g.intersects(frame_ll.buffer(2.0))].to_crs(crs)

    # portrait page: the map across the top, its key below (reads at A4 width in the report)
    fig = plt.figure(figsize=(11.0, 12.5))
    ax = fig.add_axes((0.02, 0.36, 0.96, 0.565))
    cax = fig.add_axes((0.04, 0.325, 0.45, 0.011))
    ax.set_facecolor("#dcebf5")  # sea
    clip(layers["countries"]).plot(ax=ax, color="#f4f1ea", edgecolor="#9a958a", linewidth=0.6, zorder=1)
    regions = clip(layers["regions"])
    out_scope = regions[~regions["in_scope"]]
    if not out_scope.empty:
        out_scope.plot(ax=ax, color="#ecebe6", edgecolor="#b9b6ad", linewidth=0.3, zorder=2)
    inscope = regions[regions["in_scope"]].copy()
    groups = ", ".join(commodity_names(c)[0] for c in commodities)
    groups_en = ", ".join(commodity_names(c)[1] for c in commodities)
    pts = layers["region_points"]
    no_poly = pts[~pts["region_id"].isin(inscope["region_id"])].to_crs(crs)  # partners without polygons: squares
    values = pd.concat([inscope["production_scope_groups_t"], no_poly["production_scope_groups_t"]]) / 1000.0
    if values.notna().any():
        norm = Normalize(vmin=float(values.min()), vmax=float(values.max()))
        if not inscope.empty:
            inscope["kt"] = inscope["production_scope_groups_t"] / 1000.0
            inscope.plot(ax=ax, column="kt", cmap="YlGn", norm=norm, edgecolor="#5f6f52", linewidth=0.5, zorder=3,
                         missing_kwds={"color": "#ecebe6"})
        if not no_poly.empty:
            no_poly.plot(ax=ax, column=no_poly["production_scope_groups_t"] / 1000.0, cmap="YlGn", norm=norm,
                         marker="s", markersize=70, edgecolor="#5f6f52", zorder=3)
        fig.colorbar(ScalarMappable(norm=norm, cmap="YlGn"), cax=cax, orientation="horizontal")
        cax.set_xlabel("Производство, тыс. т в год / Production, thousand t a year\n(2023; production.csv: Росстат, "
                       "ФАОСТАТ / Rosstat, FAOSTAT;\nчастично приблизительно / partly approximate)\n"
                       + textwrap.fill(groups, 70) + "\n" + textwrap.fill(groups_en, 70)
                       + ("\n■ регион без границ на карте — в его центре / region without an outline: at its centre"
                          if not no_poly.empty else ""), fontsize=8)
        cax.tick_params(labelsize=7)
    else:
        cax.set_visible(False)
    countries = clip(layers["countries"])
    for r in countries.itertuples():
        p = r.geometry.representative_point()
        if frame[0] < p.x < frame[2] and frame[1] < p.y < frame[3] and r.iso3 != "RUS":
            ax.annotate(f"{r.name_ru}\n{r.name_en}", (p.x, p.y), ha="center", va="center", fontsize=8,
                        color="#7a7466", style="italic", zorder=4)
    cor = clip(layers["corridors"])
    if not cor.empty:
        cor[cor["mode"] == "road"].plot(ax=ax, color="#b2182b", linewidth=0.7, alpha=0.55, zorder=4)
        cor[cor["mode"] == "rail"].plot(ax=ax, color="#333333", linewidth=0.7, linestyle=(0, (4, 2)), alpha=0.7,
                                        zorder=4)
    seg = segment_tonnes(layers["flows"])
    top = float(seg["tonnes_t"].max()) if not seg.empty else 0.0
    width = (lambda t: 0.6 + 7.4 * np.sqrt(t / top)) if top > 0 else (lambda t: 1.0)
    if not seg.empty:
        seg = clip(seg)
        seg.plot(ax=ax, color=FLOW_COLOUR, alpha=0.55, linewidth=[width(t) for t in seg["tonnes_t"]], zorder=5,
                 capstyle="round")
    xs = clip(layers["crossings"])
    for is_open, style in ((True, {"marker": "^", "color": "#1a9850", "markersize": 45}),
                           (False, {"marker": "X", "color": "#d73027", "markersize": 60})):
        part = xs[xs["open"] == is_open] if not xs.empty else xs
        if not part.empty:
            part.plot(ax=ax, edgecolor="black", linewidth=0.4, zorder=6, **style)
    trade = clip(layers["trade"]) if "trade" in layers else gpd.GeoDataFrame()
    trade_top = float(trade["total_t"].max()) if not trade.empty else 0.0
    cen = layers["centres"].to_crs(crs)
    numbered = len(cen) > MAX_NAMED_CENTRES  # a dense map numbers its centres and names them in a key
    texts, outside_key = [], []  # outside_key: a dense map letters its crossings and markets, named in a key
    if trade_top > 0:
        inside = trade[trade.geometry.within(box(*frame))]
        ax.scatter(inside.geometry.x, inside.geometry.y, s=TRADE_MAX_AREA * inside["total_t"] / trade_top,
                   facecolor="none", edgecolor=TRADE_COLOUR, linewidth=1.4, zorder=6.5)
        for r in inside[(inside["total_t"] >= MIN_LABEL_T) & (inside["kind"] == "crossing")].itertuples():
            figures = f"↓{_kt(r.imports_t)} ↑{_kt(r.exports_t)} тыс. т / kt"
            if numbered:
                label = _letter(len(outside_key))
                outside_key.append(f"{label}. {r.name_ru} / {r.name_en}: {figures}")
            else:
                label = f"{_wrap(r.name_ru, 22)}\n{figures}"
            texts.append(ax.text(r.geometry.x, r.geometry.y, label, fontsize=7 if numbered else 6.5,
                                 color=TRADE_COLOUR, zorder=7, fontweight="bold" if numbered else "normal",
                                 bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8}))
    key_lines = []
    for i, r in enumerate(cen.sort_values(["existing", "name_ru"], ascending=[False, True]).itertuples(), start=1):
        colour = EXISTING_COLOUR if r.existing else NEW_COLOUR
        ax.scatter([r.geometry.x], [r.geometry.y], s=SIZE_MARKERS.get(r.size, 80.0), color=colour,
                   edgecolor="black", linewidth=0.7, zorder=8, marker="o" if r.existing else "D")
        label = str(i) if numbered else _wrap(r.name_ru)
        key_lines.append(f"{i}. {r.name_ru} / {r.name_en}")
        texts.append(ax.text(r.geometry.x, r.geometry.y, label, fontsize=7.5, zorder=9,
                             fontweight="bold" if numbered else "normal",
                             bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75}))
    centres_key = None
    if numbered:
        centres_key = fig.text(0.04, 0.225, "ОРЦ на карте / centres on the map:\n" + "\n".join(
            textwrap.fill(line, 84, subsequent_indent="    ") for line in key_lines),
            fontsize=6.8, va="top", linespacing=1.2)
    ax.set_xlim(frame[0], frame[2])
    texts += _label_exits(ax, layers, crs, frame_ll, outside_key if numbered else None)
    ax.set_ylim(frame[1], frame[3])
    if texts:
        adjust_text(texts, ax=ax, expand=(1.2, 1.4),
                    arrowprops={"arrowstyle": "-", "color": "#333333", "lw": 0.8, "zorder": 8.5},
                    ensure_inside_axes=True, x=list(cen.geometry.x), y=list(cen.geometry.y))
    ax.add_artist(ScaleBar(1.0, "m", location="lower left", box_alpha=0.7, length_fraction=0.2))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.suptitle(f"{title_ru}\n{title_en}", fontsize=11.5, x=0.01, ha="left", y=0.975)
    legend = fig.legend(handles=_legend_handles(top, width, trade_top), loc="upper left",
                        bbox_to_anchor=(0.53, 0.345), fontsize=8, frameon=False,
                        title="Условные обозначения / Legend", title_fontsize=9, alignment="left")
    notes_at = (0.545, 0.015, "bottom") if numbered else (0.04, 0.215, "top")  # under the key, or the scale
    renderer = fig.canvas.get_renderer()  # the keys are placed by their laid-out sizes, without drawing the figure
    if centres_key is not None and cax.get_visible():  # under the colour bar's caption, however long it is
        caption = cax.get_tightbbox(renderer).transformed(fig.transFigure.inverted())
        centres_key.set_y(min(0.225, caption.y0 - 0.012))
    if outside_key:  # under the legend, and the notes under it
        below = legend.get_window_extent(renderer).transformed(fig.transFigure.inverted()).y0 - 0.012
        key = fig.text(0.545, below, "Пункты пропуска и рынки / crossings and markets (↓ ввоз / imports, ↑ вывоз / "
                       "exports;\n→ продажи рынку / sales to the market, ← закупки / purchases; тыс. т в год / kt a "
                       "year):\n" + "\n".join(textwrap.fill(line, 72, subsequent_indent="    ")
                                               for line in outside_key),
                       fontsize=6.8, va="top", linespacing=1.2)
        notes_at = (0.545, key.get_window_extent(renderer).transformed(fig.transFigure.inverted()).y0 - 0.012, "top")
    drawn = layers["regions"]
    kz_schematic = bool((drawn["region_id"].str.startswith("KZ-") & drawn["outline_approximate"].astype(bool)).any())
    crimea = regions[regions["region_id"].isin(("RU-CR", "RU-SEV"))
                     & regions["outline_approximate"].astype(bool)]  # schematic outlines only
    notes = ("Проекция: коническая равноугольная\nЛамберта / Lambert conformal conic, WGS 84.\n"
             "Границы / boundaries: geoBoundaries\n(© OpenStreetMap, ODbL), Natural Earth.\n")
    if not crimea.empty:
        notes += "Крым и Севастополь — схематично /\nCrimea and Sevastopol schematic.\n"
    if kz_schematic:
        notes += "Новые области Казахстана — схематично /\nKazakhstan's new regions schematic.\n"
    notes += "Потоки — по маршруту в сети коридоров /\nflows drawn along their network route."
    fig.text(notes_at[0], notes_at[1], notes, fontsize=7, va=notes_at[2], color="#555555")
    for p in paths:
        fig.savefig(p, dpi=150 if p.suffix == ".png" else "figure", bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return paths


def _letter(i: int) -> str:
    """The ``i``-th key letter: A … Z, then AA, AB, …"""
    return chr(65 + i) if i < 26 else _letter(i // 26 - 1) + chr(65 + i % 26)


def _label_exits(ax, layers: dict[str, gpd.GeoDataFrame], crs: str, frame_ll, key: list[str] | None = None) -> list:
    """Where flows leave the frame towards an outside market (or come in from one), name the market at the edge
    with the tonnes a year as the market counts them (``→ Москва``: what it buys, i.e. after transit losses;
    ``←``: what it sells); returns the texts (for the label placement). With ``key`` (a dense map) each market
    gets the next letter on the map and its name and tonnes are appended to ``key``."""
    flows = layers["flows"]
    if flows.empty:
        return []
    out = flows[flows["to_id"].str.startswith("exit:") | flows["from_id"].str.startswith("import:")]
    seen: dict[str, list] = {}
    for r in out.itertuples():
        towards = r.to_id.startswith("exit:")
        end = Point(r.geometry.coords[-1] if towards else r.geometry.coords[0])
        if frame_ll.contains(end):  # the market is on the map: name it where it is
            pt = end
        else:  # name it where its flows leave the frame
            cut = r.geometry.intersection(frame_ll.boundary)
            pts = [cut] if cut.geom_type == "Point" else [g for g in getattr(cut, "geoms", [])
                                                          if g.geom_type == "Point"]
            if not pts:
                continue
            pt = sorted(pts, key=lambda q: r.geometry.project(q))[-1 if towards else 0]
        name, name_en = (r.to_ru, r.to_en) if towards else (r.from_ru, r.from_en)
        arrow = "→" if towards else "←"
        entry = seen.setdefault(f"{arrow}{name}", [pt, 0.0, f"{arrow} {name}\n{name_en}"])
        entry[1] += float(r.tonnes_t) - (float(r.lost_t or 0.0) if towards else 0.0)
    x0, y0, x1, y1 = frame_ll.bounds
    texts = []
    for pt, tonnes, label in seen.values():
        if tonnes < MIN_LABEL_T:
            continue
        p = gpd.GeoSeries([pt], crs=4326).to_crs(crs).iloc[0]
        ha = "left" if pt.x < x0 + 0.2 else ("right" if pt.x > x1 - 0.2 else "center")
        va = "bottom" if pt.y < y0 + 0.2 else ("top" if pt.y > y1 - 0.2 else "center")
        text = f"{label}: {_kt(tonnes)} тыс. т / kt"
        if key is not None:
            key.append(f"{_letter(len(key))}. {text.replace(chr(10), ' / ', 1)}")
            text = _letter(len(key) - 1)
        texts.append(ax.text(p.x, p.y, text, fontsize=7, fontweight="bold" if key is not None else "normal",
                             color=FLOW_COLOUR, ha=ha, va=va, zorder=7,
                             bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": FLOW_COLOUR, "lw": 0.5,
                                   "alpha": 0.9}))
    return texts


def _legend_handles(top: float, width, trade_top: float = 0.0) -> list:
    """Legend entries: centres by status and size, corridors by mode, flow widths, crossings open/closed, trade
    at crossings and markets."""
    h = [Line2D([], [], marker="o", ls="", color=EXISTING_COLOUR, mec="black", ms=8,
                label="действующий ОРЦ / existing centre")]
    for size, (ru, en) in (("small", ("малый", "small")), ("medium", ("средний", "medium")),
                           ("large", ("крупный", "large"))):
        h.append(Line2D([], [], marker="D", ls="", color=NEW_COLOUR, mec="black", ms=np.sqrt(SIZE_MARKERS[size]),
                        label=f"новый ОРЦ, {ru} / new centre, {en}"))
    h += [Line2D([], [], color="#b2182b", lw=1.2, alpha=0.7, label="автодорога / road corridor"),
          Line2D([], [], color="#333333", lw=1.2, ls=(0, (4, 2)), label="железная дорога / rail corridor")]
    if top > 0:
        for frac in (1.0, 0.25, 0.05):
            t = top * frac
            h.append(Line2D([], [], color=FLOW_COLOUR, alpha=0.55, lw=width(t),
                            label=f"поток {fmt(t / 1000, 0)} тыс. т в год / flow, kt a year"))
    h += [Line2D([], [], marker="^", ls="", color="#1a9850", mec="black", ms=7,
                 label="пункт пропуска открыт / crossing open"),
          Line2D([], [], marker="X", ls="", color="#d73027", mec="black", ms=8,
                 label="пункт пропуска закрыт / crossing closed")]
    if trade_top > 0:
        h.append(Line2D([], [], marker="o", ls="", mfc="none", mec=TRADE_COLOUR, mew=1.4,
                        ms=np.sqrt(TRADE_MAX_AREA / 4), label=f"ввоз ↓ и вывоз ↑ через пункт пропуска, порт, рынок: "
                        f"{fmt(trade_top / 4000, 0)} тыс. т в год /\nimports ↓ and exports ↑ at a crossing, port, "
                        "market, kt a year (ring area ∝ tonnes)"))
    return h
