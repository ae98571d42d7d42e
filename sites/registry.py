"""Read and validate site registries.

Accepted inputs: GeoJSON, GeoPackage, Shapefile (anything pyogrio reads), CSV or an Excel workbook
(.xlsx, one sheet) with a WKT column or with latitude/longitude columns (or one ``"lat, lon"``
text column), and an Arches-style business-data JSON export.

Rules (each one raises with the offending row named; nothing is dropped silently):

* Column names are compared as field names ("Site ID" is ``site_id``, "Sensitivity"
  ``sensitivity``, "Buffer (m)" ``buffer_m``).
* ``site_id`` and ``name`` are required; ``site_id`` is unique, also ignoring case (both rows
  are named).  A numeric id read as a float (a column with a gap) keeps its integer form.
* A CSV is UTF-8, comma or semicolon separated (decimal commas are read), and every row has
  as many cells as the header.
* Coordinate columns may carry a datum, unit or axis word ("Latitude (WGS84)", "Lon_DD",
  ArcGIS's ``POINT_X``/``POINT_Y``), and their values may be degrees, minutes and seconds
  (``47°30'15"N``, ``N 47° 30,5'``, read by PyGeodesy); a hemisphere letter of the other axis
  is refused as swapped columns, minutes or seconds of 60 or more as a typo.
* A file without a CRS is read as EPSG:4326 and a warning is recorded on every site.
* A file that declares a projected CRS (metres) but whose coordinates all lie within ±180, ±90 is
  rejected as degrees under the wrong CRS (its sites would land beside the projection's origin).
* A file with several layers (a GeoPackage) is read whole: every layer with a geometry and
  site_id and name columns; the others are named in a warning.
* Coordinates outside lon/lat range are rejected: either lat/lon are swapped (|lat| > 90 while
  |lon| <= 90, or the site falls outside the declared region but its mirror falls inside), or the
  file holds projected metres without a CRS.
* Invalid polygons are repaired with ``shapely.make_valid``; the repair is recorded on the site.
* Points are buffered into circles of their ``radius_m`` column, or of their area's
  (``area_ha``, ``area_m2``), or else of ``point_radius_m`` (250 m), and that is recorded.
* A polygon spanning more than 180 degrees of longitude is rejected (antimeridian).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from shapely import wkt as shapely_wkt
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from sitewatch.errors import DuplicateSiteId, InvalidSiteFile, InvalidSiteGeometry

from .geo import DMS_MARKS, area_m2, buffer_m, parse_degrees, parse_number
from .model import SENSITIVITIES, Site
from .tables import (LATITUDE_WORDS, LONGITUDE_WORDS, OLD_WORKBOOK_SUFFIXES, WORKBOOK_SUFFIXES, TableError, chosen_columns,
                     column_key, coordinate_key, is_workbook, read_table)

ID_COLUMNS = ("site_id", "id", "siteid", "resourceinstanceid",
              "код", "дугаар", "código", "codigo", "code", "identifiant", "الرمز", "رمز")
NAME_COLUMNS = ("name", "site_name", "name_en", "title", "displayname",
                "нэр", "дурсгалын_нэр", "название", "наименование", "назва", "nombre", "nom", "الاسم", "اسم",
                "اسم_الموقع", "nombre_del_sitio", "nombre_sitio", "nom_du_site", "название_объекта",
                "название_памятника")
WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "геометр", "геометрия", "геометрія", "geometría", "geometria", "géométrie")
LAT_COLUMNS = ("lat", "latitude", "y", *LATITUDE_WORDS)
LON_COLUMNS = ("lon", "lng", "long", "longitude", "x", *LONGITUDE_WORDS)
REGION_COLUMNS = ("region", "aimag", "province", "governorate", "oblast", "department", "departamento", "district",
                  "location", "аймаг", "область", "регион", "región", "provincia", "محافظة", "المحافظة")
"""The administrative area a site's patrols belong to (field packs are split by it): Mongolia's
aimags, Egypt's and Jordan's governorates, Peru's departments, Ukraine's oblasts."""
HEADER_LANGUAGES = "English, Mongolian, Russian, Ukrainian, Spanish, French and Arabic"
"""Whose words for the id, name, latitude, longitude and region columns are known (a registry
kept in Mongolian has Нэр, Өргөрөг, Уртраг; one from Peru nombre, latitud, longitud)."""
DEFAULT_BUFFER_M = 50.0
DEFAULT_POINT_RADIUS_M = 250.0


@dataclass
class RegistryResult:
    """Sites read from one file, plus what was changed or assumed on the way."""

    sites: list[Site]
    warnings: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """Rows left out (only with ``strict=False``), each with its row number and reason."""

    @property
    def repairs(self) -> list[str]:
        return [f"{s.site_id}: {r}" for s in self.sites for r in s.repairs]


def read_sites(
    path: str | Path,
    *,
    region_bbox: tuple[float, float, float, float] | None = None,
    point_radius_m: float = DEFAULT_POINT_RADIUS_M,
    crs: str | None = None,
    strict: bool = True,
    columns: dict[str, str] | None = None,
) -> RegistryResult:
    """Read a site registry file and validate every row.

    ``region_bbox`` (lon_min, lat_min, lon_max, lat_max) is the area the registry should fall in
    (e.g. Mongolia); sites outside it whose mirrored coordinates fall inside are reported as
    swapped lat/lon.  ``crs`` overrides a missing or wrong CRS in the file.  ``columns`` names the
    file's column for a field (:data:`REGISTRY_FIELDS`: ``{"site_id": "Дурсгалт газрын код"}``)
    where its name is not one sitewatch knows; another column that would answer for that field
    is then not read for it (a warning names it).
    """
    path = Path(path)
    if not path.exists():
        raise InvalidSiteFile(f"{path}: no such file")
    suffix = path.suffix.lower()
    warnings: list[str] = []
    columns = dict(columns or {})
    if unknown := sorted(set(columns) - set(REGISTRY_FIELDS)):
        raise InvalidSiteFile(f"no registry field {unknown[0]!r}; the fields are {', '.join(REGISTRY_FIELDS)}")
    if suffix == ".csv" or suffix in WORKBOOK_SUFFIXES + OLD_WORKBOOK_SUFFIXES:
        frame = _read_table(path, crs, warnings, columns)
    elif suffix == ".json" and _is_arches(path):
        if columns:
            raise InvalidSiteFile(f"{path}: an Arches export's fields are fixed; --column is for tables and vector files")
        frame = _read_arches(path)
    else:
        if geometry := sorted(set(columns) & {"wkt", "lat", "lon"}):
            raise InvalidSiteFile(f"{path}: a vector file carries its own geometry; --column {geometry[0]} is for "
                                  "CSV and Excel registries")
        frame = _read_vector(path, crs, warnings, columns)
    rejected: list[str] = []
    sites = _validate(frame, path.name, region_bbox, point_radius_m, warnings, None if strict else rejected)
    return RegistryResult(sites, warnings, rejected)


def _read_layer(path: Path, layer: str | None, crs: str | None, warnings: list[str],
                columns: dict[str, str]) -> gpd.GeoDataFrame | None:
    """One layer, its chosen columns renamed to their fields; None for one of several layers that
    lacks a chosen column (it is named as left out)."""
    try:
        frame = gpd.read_file(path, layer=layer)
    except Exception as exc:  # pyogrio raises its own DataSourceError family
        raise InvalidSiteFile(f"{path}: cannot read as a vector file ({exc})") from exc
    if columns:
        names = [c for c in frame.columns if c != frame.geometry.name]
        try:
            chosen = _chosen_names(names, columns, f"{path.name}" + (f" (layer {layer})" if layer else ""), warnings)
        except InvalidSiteFile:
            if layer is None:
                raise
            return None
        frame = frame.rename(columns=dict(zip(names, chosen)))
    if crs:
        frame = frame.set_crs(crs, allow_override=True)
    if frame.crs is None:
        where = f" (layer {layer})" if layer else ""
        warnings.append(f"{path.name}{where}: no CRS declared; assuming EPSG:4326 (lon/lat)")
        frame = frame.set_crs(4326)
    return frame


def _read_vector(path: Path, crs: str | None, warnings: list[str], columns: dict[str, str]) -> gpd.GeoDataFrame:
    """A vector file; a GeoPackage (or any source) with several layers is read whole: every layer
    with a geometry and site_id and name columns, the others named in a warning, never dropped
    without a word (GDAL alone reads the first layer)."""
    import pyogrio

    try:
        layers = [(str(name), gtype) for name, gtype in pyogrio.list_layers(path)]
    except Exception as exc:  # noqa: BLE001 - pyogrio's DataSourceError family
        raise InvalidSiteFile(f"{path}: cannot read as a vector file ({exc})") from exc
    if len(layers) <= 1:
        return _read_layer(path, None, crs, warnings, columns)
    frames, read, left_out = [], [], []
    for name, gtype in layers:
        frame = _read_layer(path, name, crs, warnings, columns) if gtype else None
        if frame is None or _column(frame, ID_COLUMNS) is None or _column(frame, NAME_COLUMNS) is None:
            left_out.append(name)
            continue
        frame = frame.to_crs(4326) if not frame.crs.equals("EPSG:4326") else frame
        frames.append(frame.rename(columns={_column(frame, ID_COLUMNS): "site_id", _column(frame, NAME_COLUMNS): "name"})
                      .assign(_layer=name))
        read.append(name)
    if not frames:
        raise InvalidSiteFile(f"{path}: none of its layers ({', '.join(n for n, _ in layers)}) has a geometry with "
                              "site_id and name columns")
    warnings.append(f"{path.name}: {len(layers)} layers; read {', '.join(read)}"
                    + (f"; left out {', '.join(left_out)} (no geometry, or no site_id/name columns)" if left_out else ""))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)


def _is_arches(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return '"business_data"' in head or '"resourceinstance"' in head


def _read_table(path: Path, crs: str | None, warnings: list[str], columns: dict[str, str]) -> gpd.GeoDataFrame:
    """A CSV or an Excel workbook (one sheet) with a WKT column or latitude/longitude columns."""
    try:
        table = read_table(path)
    except TableError as exc:
        raise InvalidSiteFile(str(exc)) from exc
    warnings.extend(f"{path.name}: {note}" for note in table.notes)
    if not table.header:
        raise InvalidSiteFile(f"{path}: the file is empty")
    width = len(table.header)
    ragged = [f"line {n} has {len(cells)} cells" for n, cells in table.rows if len(cells) != width]
    if ragged:  # reading on would shift the columns or drop the extra cells without a word
        raise InvalidSiteFile(
            f"{path}: the header has {width} columns but " + "; ".join(ragged[:10])
            + (f" and {len(ragged) - 10} more" if len(ragged) > 10 else "")
            + " (an unquoted comma or semicolon in a name?)"
        )
    names: list[str] = []
    for i, h in enumerate(table.header):  # as pandas names them: blank → "Unnamed: i", repeats → "x.1"
        name, k = h or f"Unnamed: {i}", 1
        while name in names:
            name, k = f"{h}.{k}", k + 1
        names.append(name)
    if columns:
        names = _chosen_names(names, columns, path.name, warnings)
    df = pd.DataFrame([cells for _, cells in table.rows], columns=names, dtype=object)
    cols = {column_key(c): c for c in df.columns}
    geoms: list[BaseGeometry | None] = []
    wkt_col = next((cols[c] for c in WKT_COLUMNS if c in cols), None)
    coords = {coordinate_key(k): c for k, c in reversed(cols.items())}  # the first such column wins
    lat_col = next((coords[c] for c in LAT_COLUMNS if c in coords), None)
    lon_col = next((coords[c] for c in LON_COLUMNS if c in coords), None)
    for name, col, known in (("lat", lat_col, LAT_COLUMNS), ("lon", lon_col, LON_COLUMNS)):
        others = [c for c in df.columns if c != col and coordinate_key(column_key(c)) in known]
        if col is not None and wkt_col is None and others:  # "Latitude (WGS84)" and "Latitude (Pulkovo)"?
            warnings.append(f"{path.name}: {name} read from {col!r}, not from {_listed(others)}; "
                            f"to read another, give --column {name}=COLUMN")
    pair_col = next((cols[c] for c in cols if re.fullmatch(r"(coordinates|coords|lat_?lon)", c)), None)
    if wkt_col is None and (lat_col is None or lon_col is None) and pair_col is None:
        raise InvalidSiteFile(
            f"{path}: no geometry column among {_listed(table.header)}; expected one of {WKT_COLUMNS} (WKT), "
            f"latitude/longitude columns ({HEADER_LANGUAGES} names are known), or a 'coordinates' "
            "column with 'lat, lon'; if they are called otherwise, name them, e.g. --column lat=\"N (deg)\" "
            "--column lon=\"E (deg)\", or rename them"
        )
    errors = []
    for (rowno, _), (_, row) in zip(table.rows, df.iterrows()):  # the spreadsheet's row numbers
        try:
            if wkt_col is not None:
                geoms.append(shapely_wkt.loads(row[wkt_col]) if row[wkt_col].strip() else None)
            elif pair_col is not None:
                geoms.append(_parse_lat_lon_pair(row[pair_col]))
            else:
                lat = parse_degrees(row[lat_col], "latitude")
                geoms.append(Point(parse_degrees(row[lon_col], "longitude"), lat))
        except (shapely.errors.GEOSException, ValueError) as exc:
            errors.append(f"row {rowno}: unreadable geometry ({exc})")
            geoms.append(None)
    if errors:
        raise InvalidSiteGeometry(f"{path}: " + "; ".join(errors))
    drop = [c for c in (wkt_col,) if c is not None]
    frame = gpd.GeoDataFrame(df.drop(columns=drop), geometry=geoms)
    if crs:
        frame = frame.set_crs(crs)
    else:
        kind = "a workbook" if is_workbook(path) else "CSV"
        warnings.append(f"{path.name}: {kind} carries no CRS; assuming EPSG:4326 (lon/lat)")
        frame = frame.set_crs(4326)
    return frame


def _parse_lat_lon_pair(text: str) -> Point | None:
    """Parse ``"48.5, 31.2"`` (lat, lon), ``"48.29 N 25.93 E"`` as used by heritage lists, or the
    same in degrees, minutes and seconds (``48°17'24"N 25°55'48"E``, ``N 48°17', E 25°56'``)."""
    text = text.strip()
    if not text:
        return None
    if re.search(f"[{DMS_MARKS}]", text):
        return _parse_dms_pair(text)
    parts = re.findall(r"([-+]?\d+(?:\.\d+)?)\s*°?\s*([NSEWnsew])?", text)
    if len(parts) != 2:
        raise ValueError(f"expected 'lat, lon', got {text!r}")
    values = []
    for number, hemi in parts:
        value = float(number)
        values.append((-value if hemi.upper() in ("S", "W") else value, hemi.upper()))
    (a, ha), (b, hb) = values
    lat, lon = (b, a) if ha in ("E", "W") or hb in ("N", "S") else (a, b)
    return Point(lon, lat)


def _parse_dms_pair(text: str) -> Point:
    """Two coordinates in degrees, minutes and seconds, split at their hemisphere letters (leading
    or trailing) or else at a ``;`` or a comma that is not a decimal comma; latitude first unless
    the letters say otherwise."""
    at_letter = r"\s*[,;]?\s*(?=[NSEWnsew])" if text[0].isalpha() else r"(?<=[NSEWnsew])\s*[,;]?\s*"
    parts = [p for p in re.split(at_letter, text) if p.strip()]
    if len(parts) != 2:
        parts = [p for p in re.split(r"\s*;\s*|\s*,\s+|(?<=\D),\s*", text) if p.strip()]
    if len(parts) != 2:
        raise ValueError(f"expected latitude and longitude, got {text!r}")
    first_is_lon = bool(re.search(r"[EWew]", parts[0])) or bool(re.search(r"[NSns]", parts[1]))
    lon_text, lat_text = parts if first_is_lon else parts[::-1]
    return Point(parse_degrees(lon_text, "longitude"), parse_degrees(lat_text, "latitude"))


def _read_arches(path: Path) -> gpd.GeoDataFrame:
    """Arches business-data export: resources with descriptors and GeoJSON tiles."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidSiteFile(f"{path}: not valid JSON ({exc})") from exc
    resources = doc.get("business_data", {}).get("resources", doc.get("resources", []))
    rows = []
    for res in resources:
        inst = res.get("resourceinstance", {})
        rid = inst.get("resourceinstanceid")
        desc = inst.get("descriptors", {})
        name = (desc.get("en", desc) if isinstance(desc.get("en"), dict) else desc).get("name") or inst.get("name")
        geom = None
        extra: dict[str, object] = {}
        for tile in res.get("tiles", []):
            for value in (tile.get("data") or {}).values():
                if isinstance(value, dict) and value.get("type") == "FeatureCollection":
                    parts = [shape(f["geometry"]) for f in value.get("features", []) if f.get("geometry")]
                    if parts:
                        geom = shapely.union_all(parts) if geom is None else shapely.union_all([geom, *parts])
        for key in ("buffer_m", "sensitivity", "region"):
            if key in inst:
                extra[key] = inst[key]
        rows.append({"site_id": rid, "name": name, "geometry": geom, **extra})
    if not rows:
        raise InvalidSiteFile(f"{path}: Arches export holds no resources")
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def _listed(columns: Iterable[object], most: int = 12) -> str:
    """A file's column names as an error quotes them (the first ``most``)."""
    names = [str(c) for c in columns]
    return ", ".join(repr(n) for n in names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "") \
        if names else "no columns"


def _column(frame: pd.DataFrame, names: Iterable[str]) -> str | None:
    keyed = {column_key(c): c for c in frame.columns}
    return next((keyed[n] for n in names if n in keyed), None)


def _keyed_columns(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns renamed to their keys ("Sensitivity" → ``sensitivity``, "Buffer (m)" → ``buffer_m``),
    where no two share one: a "Sensitivity" column read as absent made a secret site restricted."""
    keys = [column_key(c) if c != frame.geometry.name else c for c in frame.columns]
    clash = {k for k in keys if keys.count(k) > 1}
    return frame.rename(columns={c: k for c, k in zip(frame.columns, keys) if k not in clash and k})


def _validate(
    frame: gpd.GeoDataFrame,
    source: str,
    region_bbox: tuple[float, float, float, float] | None,
    point_radius_m: float,
    warnings: list[str],
    rejected: list[str] | None,
) -> list[Site]:
    frame = _keyed_columns(frame)
    id_col = _column(frame, ID_COLUMNS)
    name_col = _column(frame, NAME_COLUMNS)
    if id_col is None or name_col is None:
        missing = [n for n, c in (("site_id", id_col), ("name", name_col)) if c is None]
        found = [c for c in frame.columns if c != frame.geometry.name and c != "_layer"]
        example = "Site code" if missing[0] == "site_id" else "Site"
        raise InvalidSiteFile(f"{source}: required column(s) missing: {', '.join(missing)} (the file has "
                              f"{_listed(found)}; {HEADER_LANGUAGES} names are known; if they are called "
                              f"otherwise, name them, e.g. --column {missing[0]}=\"{example}\", or rename them)")
    if frame.crs is not None and frame.crs.is_projected and len(frame.geometry.dropna()):
        x0, y0, x1, y1 = frame.geometry.dropna().total_bounds
        if max(abs(x0), abs(x1)) <= 180 and max(abs(y0), abs(y1)) <= 90:
            # every site within 180 m of the projection's origin: degrees under a metric CRS
            raise InvalidSiteFile(
                f"{source}: declares {frame.crs.name} (EPSG:{frame.crs.to_epsg()}, metres), but every "
                f"coordinate lies within ±180, ±90 ({x0:.4f}, {y0:.4f} … {x1:.4f}, {y1:.4f}): they look "
                "like longitude/latitude; correct the file's CRS or pass --crs EPSG:4326"
            )
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs(4326)
    region = box(*region_bbox) if region_bbox else None
    problems: list[str] = []
    sites: list[Site] = []
    seen: dict[str, tuple[int, str]] = {}
    assumed = [w for w in warnings if "assuming EPSG:4326" in w]
    layered = "_layer" in frame.columns
    for pos, (_, row) in enumerate(frame.iterrows()):
        label = f"row {pos + 1}" + (f" (layer {row['_layer']})" if layered else "")
        site_id = _id_text(row[id_col])
        if not site_id or site_id.lower() == "nan":
            problems.append(f"{label}: empty site_id")
            continue
        label = f"row {pos + 1}" + (f" (layer {row['_layer']}, site_id {site_id!r})" if layered else f" (site_id {site_id!r})")
        # ids that differ only in case are one id to a report naming the site, and to the file
        # names of a field pack unpacked on Windows or macOS
        if (other := seen.get(site_id.casefold())) is not None:
            twin = "" if other[1] == site_id else f" (as {other[1]!r}, which differs only in case)"
            raise DuplicateSiteId(
                f"{source}: site_id {site_id!r} appears in row {other[0] + 1}{twin} and row {pos + 1}; "
                "site ids must be unique — rename one or merge the rows"
            )
        seen[site_id.casefold()] = (pos, site_id)
        name = str(row[name_col]).strip() if row[name_col] is not None else ""
        if not name or name.lower() == "nan":
            problems.append(f"{label}: empty name")
            continue
        try:
            buf = _number(row.get("buffer_m"), DEFAULT_BUFFER_M)
            if buf < 0 or buf > 50_000:
                raise ValueError(f"buffer_m {buf} outside 0..50000")
            # Shapefiles cut field names to 10 characters: "sensitivity" arrives as "sensitivit".
            raw_sens = row.get("sensitivity", row.get("sensitivit"))
            if raw_sens is None or (isinstance(raw_sens, float) and math.isnan(raw_sens)):
                raw_sens = ""  # a GeoJSON feature without the property that others have
            sens = str(raw_sens).strip().lower() or "restricted"
            if sens not in SENSITIVITIES:
                raise ValueError(f"sensitivity {sens!r} is not one of {SENSITIVITIES}")
            radius, why = _point_radius(row, point_radius_m)
            geom, repairs = _check_geometry(row.geometry, region, radius, why)
        except (ValueError, InvalidSiteGeometry) as exc:
            problems.append(f"{label}: {exc}")
            continue
        if assumed:
            repairs = ("CRS not declared; read as EPSG:4326", *repairs)
        region_name = str(next((row.get(c) for c in REGION_COLUMNS if row.get(c)), "") or "").strip()
        sites.append(Site(site_id, name, geom, buf, sens, region_name if region_name != "nan" else "", repairs))
    if problems and rejected is not None:
        rejected.extend(problems)
    elif problems:
        raise InvalidSiteGeometry(
            f"{source}: {len(problems)} invalid row(s) — " + "; ".join(problems)
            + " (fix them, or import with --skip-invalid to set them aside)"
        )
    if not sites:
        raise InvalidSiteFile(f"{source}: no sites in file")
    return sites


def _id_text(value: object) -> str:
    """A site id as text.  A numeric id column with a gap is read as floats: 12.0 is site 12."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _number(value: object, default: float) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"buffer_m {value!r} is not a number of metres") from None
    if math.isnan(number):
        return default
    return number


RADIUS_COLUMNS = ("radius_m", "radius", "радиус_м", "радиус", "radio_m", "radio", "rayon_m", "نصف_القطر")
"""A point site's extent as the registry gives it: a radius in metres …"""
AREA_COLUMNS = {"area_ha": 1e4, "hectares": 1e4, "ha": 1e4, "талбай_га": 1e4, "площадь_га": 1e4, "площа_га": 1e4,
                "superficie_ha": 1e4, "área_ha": 1e4, "area_m2": 1.0, "area_sq_m": 1.0, "талбай_м2": 1.0,
                "площадь_м2": 1.0, "superficie_m2": 1.0, "área_m2": 1.0}
"""… or an area, with its unit in the column's name (square metres per unit): the point becomes a
circle of that area.  A bare "area" column is not read: hectares or square metres?"""


def _point_radius(row: pd.Series, default: float) -> tuple[float, str]:
    """The radius a point site is buffered by, and where it comes from: the row's radius or area
    column where it has a value, else ``default``."""
    for col in RADIUS_COLUMNS:
        if (r := _extent(row.get(col), col)) is not None:
            return _at_most_50_km(r, f"{col} {r:g}"), f"its {col}"
    for col, unit in AREA_COLUMNS.items():
        if (a := _extent(row.get(col), col)) is not None:
            return _at_most_50_km(math.sqrt(a * unit / math.pi), f"{col} {a:g}"), f"the area in its {col}, {a:g}"
    return default, "registry gave no outline"


def _extent(value: object, col: str) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
        return None
    try:
        x = parse_number(str(value), col)
    except ValueError:
        raise ValueError(f"{col} {value!r} is not a number") from None
    if not x > 0:
        raise ValueError(f"{col} {x:g} is not a site's size")
    return x


REGISTRY_FIELDS = ("site_id", "name", "wkt", "lat", "lon", "region", "buffer_m", "sensitivity", "radius_m", "area_ha",
                   "area_m2")
"""What ``columns`` (``--column FIELD=COLUMN``) can name a registry's column for."""


def _aliases(name: str) -> set[str]:
    """The column names that answer for a registry field without ``--column``."""
    size = {*RADIUS_COLUMNS, *AREA_COLUMNS}  # one size per point: a chosen one is the only one read
    return set({"site_id": ID_COLUMNS, "name": NAME_COLUMNS, "wkt": WKT_COLUMNS, "lat": LAT_COLUMNS,
                "lon": LON_COLUMNS, "region": REGION_COLUMNS, "buffer_m": ("buffer_m",),
                "sensitivity": ("sensitivity", "sensitivit"), "radius_m": size, "area_ha": size, "area_m2": size}[name])


def _chosen_names(names: list[str], columns: dict[str, str], source: str, warnings: list[str]) -> list[str]:
    """The file's column names with each chosen column renamed to its field, and any other column
    that would answer for that field renamed ``<name> (not read)``, with a warning.  A chosen
    latitude and longitude set a WKT column aside too (it would be read before them)."""
    try:
        found = chosen_columns(names, columns, source)
    except TableError as exc:
        raise InvalidSiteFile(str(exc)) from exc
    rename = {column: name for name, column in found.items()}
    aside = set().union(*(_aliases(f) for f in found))
    coordinates = set().union(*(_aliases(f) for f in found if f in ("lat", "lon")))
    if coordinates and "wkt" not in found:
        aside |= _aliases("wkt")
    out = []
    for n in names:
        key = column_key(n)
        if n in rename:
            out.append(rename[n])
        elif key in aside or coordinate_key(key) in coordinates or key in found:
            why = next((f for f in found if key == f or key in _aliases(f)), None)
            why = why or next(f for f in ("lat", "lon") if f in found)  # a WKT or coordinate column
            out.append(f"{n} (not read)")
            warnings.append(f"{source}: column {n!r} not read, since --column {why}={found[why]!r} was given")
        else:
            out.append(n)
    return out


def _at_most_50_km(radius: float, what: str) -> float:
    if radius > 50_000:  # as buffer_m: a landscape is a polygon of its own, or parts (`sitewatch sites split`)
        raise ValueError(f"{what} makes a circle of {radius / 1000:.0f} km radius; over 50 km is not one site's size")
    return radius


def _check_geometry(
    geom: BaseGeometry | None, region: Polygon | None, point_radius_m: float, why: str = "registry gave no outline"
) -> tuple[BaseGeometry, tuple[str, ...]]:
    if not isinstance(geom, BaseGeometry) or geom.is_empty:
        raise InvalidSiteGeometry("geometry is missing or empty")
    minx, miny, maxx, maxy = geom.bounds
    if max(abs(minx), abs(maxx)) > 180 or max(abs(miny), abs(maxy)) > 90:
        if max(abs(miny), abs(maxy)) > 90 and max(abs(minx), abs(maxx)) <= 90:
            raise InvalidSiteGeometry(
                f"latitude {maxy if abs(maxy) > 90 else miny:.4f} is impossible; lat/lon look swapped "
                "(write longitude first, as x)"
            )
        raise InvalidSiteGeometry(
            f"coordinates {minx:.1f}, {miny:.1f} are not lon/lat; the file looks projected "
            "(metres) without a declared CRS — declare it or pass --crs EPSG:…"
        )
    if region is not None and not geom.intersects(region):
        mirrored = shapely.transform(geom, lambda xy: xy[:, ::-1])
        if mirrored.intersects(region):
            raise InvalidSiteGeometry(
                "outside the declared region but inside it with lat/lon exchanged; lat/lon look swapped"
            )
        raise InvalidSiteGeometry(f"outside the declared region {region.bounds}")
    if maxx - minx > 180:
        raise InvalidSiteGeometry(
            f"spans {maxx - minx:.0f} degrees of longitude: it crosses the antimeridian; split it in two"
        )
    repairs: list[str] = []
    if geom.geom_type in ("Point", "MultiPoint"):
        repairs.append(f"point buffered to a {point_radius_m:.0f} m circle ({why})")
        geom = buffer_m(geom, point_radius_m)
    if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise InvalidSiteGeometry(f"{geom.geom_type} is not an area; give a polygon or a point")
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        before = geom.area
        fixed = shapely.make_valid(geom)
        polys = [g for g in getattr(fixed, "geoms", [fixed]) if g.geom_type in ("Polygon", "MultiPolygon")]
        if not polys:
            raise InvalidSiteGeometry(f"invalid polygon ({reason}) has no area once repaired")
        fixed = shapely.union_all(polys)
        repairs.append(
            f"invalid polygon ({reason}) repaired with make_valid: {area_m2(fixed):.0f} m² "
            f"({'was reported as ' + format(before, '.3g') + ' deg²' if before else 'self-intersecting, area was 0'})"
        )
        geom = fixed
    if geom.geom_type == "GeometryCollection":
        polys = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        if not polys:
            raise InvalidSiteGeometry("geometry collection holds no polygon")
        geom = shapely.union_all(polys)
    if isinstance(geom, (Polygon, MultiPolygon)) and area_m2(geom) < 1.0:
        raise InvalidSiteGeometry("polygon has no area (under 1 m²)")
    return geom, tuple(repairs)
