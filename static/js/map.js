/* The command-centre live map: people of the viewer's scope, live over /live, on MapLibre.
 *
 * One GeoJSON source holds every shown person; a circle layer colours them by role (grey
 * when stale) and a symbol layer draws heading arrows from zoom 14, so WebGL keeps 20,000
 * people fast. Updates are merged into a Map keyed by person; at most once per frame the
 * people whose marker changed are sent to the source as a diff (updateData).
 * Alerts, coverage and dispatch live in command.js, which uses window.__tracker.
 */
(function () {
  "use strict";

  var settings = JSON.parse(document.getElementById("settings").textContent);
  var messages = settings.messages;
  var STALE_COLOR = "#a3aab2";
  var ROLE_COLORS = {
    volunteer: "#e67e22",
    street_chief: "#c0392b",
    grid_worker: "#2d7dd2",
    patrol: "#1e9e5a",
  };
  var EXTRA_COLORS = ["#8e44ad", "#16a085", "#b7950b", "#34495e"];
  var MOVING_MPS = 0.5;
  var DEFAULT_CENTER = [116.397, 39.916];

  /** Return the message `key` in the page's language, with {name} placeholders filled. */
  function t(key, params) {
    var text = messages[key] || key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.replace("{" + name + "}", params[name]);
    });
    return text;
  }

  function roleName(role) {
    return messages["role." + role] || role;
  }

  var extraRoles = [];
  function roleColor(role) {
    if (ROLE_COLORS[role]) return ROLE_COLORS[role];
    var index = extraRoles.indexOf(role);
    if (index < 0) index = extraRoles.push(role) - 1;
    return EXTRA_COLORS[index % EXTRA_COLORS.length];
  }

  // Everything drawn is shifted to GCJ-02 when the basemap uses it; data stays WGS-84.
  var identity = function (lon, lat) { return [lon, lat]; };
  var project = settings.gcj02 ? window.gcj02.wgs84ToGcj02 : identity;
  var unproject = settings.gcj02 ? window.gcj02.gcj02ToWgs84 : identity;

  // --- state ----------------------------------------------------------------------
  var people = new Map(); // person id -> record (WGS-84, ts in epoch ms)
  var units = new Map(); // unit id -> {id, name, kind, parent_id, label_point, children}
  var filters = { hiddenRoles: new Set(), duty: "on", search: "", unitIds: null, unitId: null };
  var selectedId = null;
  var trail = []; // WGS-84 [lon, lat] of the selected person's fixes today
  var trailSummary = null;
  var narrowed = false;
  var renderQueued = false;
  var lastRenderMs = 0;
  var firstFit = false;

  // --- formatting -----------------------------------------------------------------
  function ageText(ts) {
    var age = Math.max(0, Math.round((Date.now() - ts) / 1000));
    if (age < 60) return t("age.seconds", { n: age });
    if (age < 3600) return t("age.minutes", { n: Math.floor(age / 60) });
    if (age < 86400) return t("age.hours", { n: Math.floor(age / 3600) });
    return t("age.days", { n: Math.floor(age / 86400) });
  }

  function isStale(p, now) {
    return now - p.ts > settings.stale_after_s * 1000;
  }

  function unitName(unitId) {
    var unit = units.get(unitId);
    return unit ? unit.name : t("no_unit");
  }

  /** Fill a <dl> with a person's details. */
  function fillDetails(dl, p) {
    var none = t("none");
    var rows = [
      [t("popup.role"), roleName(p.role)],
      [t("popup.unit"), unitName(p.unit_id)],
      [t("popup.last_fix"), ageText(p.ts) + (isStale(p, Date.now()) ? " · " + t("popup.stale") : "")],
      [t("popup.accuracy"), p.accuracy == null ? none : t("unit.m", { n: Math.round(p.accuracy) })],
      [t("popup.speed"), p.speed == null ? none : t("unit.kmh", { n: (p.speed * 3.6).toFixed(1) })],
      [t("popup.battery"), p.battery == null ? none : Math.round(p.battery * 100) + "%"],
      ["", p.on_duty ? t("popup.on_duty") : t("popup.off_duty")],
    ];
    dl.replaceChildren();
    rows.forEach(function (row) {
      var dt = document.createElement("dt");
      var dd = document.createElement("dd");
      dt.textContent = row[0];
      dd.textContent = row[1];
      dl.append(dt, dd);
    });
  }

  // --- map ------------------------------------------------------------------------
  var style = {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
  };
  if (settings.tile_url) {
    style.sources.basemap = {
      type: "raster",
      tiles: [settings.tile_url],
      tileSize: 256,
      attribution: settings.tile_attribution || "",
    };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }

  var map = new maplibregl.Map({
    container: "map",
    style: style,
    center: DEFAULT_CENTER,
    zoom: 13,
    attributionControl: settings.tile_url ? { compact: true } : false,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: true }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");

  /** Return the heading arrow: a wedge above the centre, rotated with the heading. */
  function arrowImage() {
    var size = 64;
    var canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    var ctx = canvas.getContext("2d");
    ctx.beginPath();
    ctx.moveTo(size / 2, 2);
    ctx.lineTo(size / 2 + 9, 19);
    ctx.lineTo(size / 2 - 9, 19);
    ctx.closePath();
    ctx.fillStyle = "#1c2733";
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.fill();
    return ctx.getImageData(0, 0, size, size);
  }

  var mapReady = new Promise(function (resolve) {
    map.on("load", function () {
      map.addImage("arrow", arrowImage(), { pixelRatio: 2 });
      var empty = { type: "FeatureCollection", features: [] };
      map.addSource("units", { type: "geojson", data: empty, promoteId: "id" });
      map.addSource("trail", { type: "geojson", data: empty });
      map.addSource("selected", { type: "geojson", data: empty });
      // Points need no simplification and little buffer; tiles past z14 are overzoomed.
      map.addSource("people", { type: "geojson", data: empty, buffer: 32, maxzoom: 14 });
      // Grids are tinted by coverage (feature-state set by command.js): red when nobody on
      // duty is inside, green when covered; other units keep a faint blue.
      map.addLayer({
        id: "units-fill",
        type: "fill",
        source: "units",
        paint: {
          "fill-color": [
            "case",
            ["==", ["feature-state", "coverage"], "uncovered"], "#e74c3c",
            ["==", ["feature-state", "coverage"], "covered"], "#27ae60",
            "#2d7dd2",
          ],
          "fill-opacity": [
            "case",
            ["==", ["feature-state", "coverage"], "uncovered"], 0.22,
            ["==", ["feature-state", "coverage"], "covered"], 0.08,
            0.05,
          ],
        },
      });
      map.addLayer({
        id: "units-selected",
        type: "line",
        source: "units",
        filter: ["==", ["get", "id"], -1],
        paint: { "line-color": "#0e3a5b", "line-width": 3 },
      });
      map.addLayer({
        id: "units-line",
        type: "line",
        source: "units",
        paint: { "line-color": "#2d6fb0", "line-width": 1.5, "line-opacity": 0.7, "line-dasharray": [3, 2] },
      });
      map.addLayer({
        id: "trail-line",
        type: "line",
        source: "trail",
        layout: { "line-join": "round", "line-cap": "round" },
        paint: { "line-color": "#1f7ae0", "line-width": 3.5, "line-opacity": 0.85 },
      });
      map.addLayer({
        id: "people-selected",
        type: "circle",
        source: "selected",
        paint: {
          "circle-radius": 13,
          "circle-color": "rgba(31, 122, 224, 0.18)",
          "circle-stroke-color": "#1f7ae0",
          "circle-stroke-width": 2,
        },
      });
      map.addLayer({
        id: "people-arrows",
        type: "symbol",
        source: "people",
        // Arrows only where they can be told apart; placing 20,000 icons city-wide is costly.
        minzoom: 14,
        filter: ["get", "moving"],
        layout: {
          "icon-image": "arrow",
          "icon-rotate": ["get", "heading"],
          "icon-rotation-alignment": "map",
          "icon-allow-overlap": true,
          "icon-ignore-placement": true,
          "icon-size": ["interpolate", ["linear"], ["zoom"], 10, 0.6, 15, 1],
        },
      });
      map.addLayer({
        id: "people",
        type: "circle",
        source: "people",
        paint: {
          "circle-color": ["case", ["get", "stale"], STALE_COLOR, ["get", "color"]],
          "circle-opacity": ["case", ["get", "stale"], 0.75, 1],
          "circle-radius": ["interpolate", ["linear"], ["zoom"], 9, 2.5, 12, 3.5, 14, 5.5, 17, 8],
          "circle-stroke-color": "#ffffff",
          "circle-stroke-width": ["interpolate", ["linear"], ["zoom"], 9, 0.5, 13, 1.5],
        },
      });
      resolve();
    });
  });

  // --- drawing --------------------------------------------------------------------
  function passesFilters(p) {
    if (filters.duty === "on" && !p.on_duty) return false;
    if (filters.unitIds && !filters.unitIds.has(p.unit_id)) return false;
    if (filters.search && p.name.toLowerCase().indexOf(filters.search) < 0) return false;
    return true;
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
  }

  var roleCounts = {};
  // What the people source holds: person id -> the feature last sent to the map. Each
  // render sends only the difference (GeoJSONSource.updateData), never the whole collection.
  var drawnFeatures = new Map();
  var sourceSeeded = false;

  function sameFeature(a, b) {
    var pa = a.properties, pb = b.properties;
    return a.geometry.coordinates[0] === b.geometry.coordinates[0] &&
      a.geometry.coordinates[1] === b.geometry.coordinates[1] &&
      pa.stale === pb.stale && pa.moving === pb.moving && pa.heading === pb.heading &&
      pa.color === pb.color;
  }

  /** Bring the people source up to date with the state; update counts and the open card. */
  function render() {
    renderQueued = false;
    var source = map.getSource("people");
    if (!source) return;
    var started = performance.now();
    var now = Date.now();
    var changed = [];
    var seen = new Set();
    var onDuty = 0;
    var staleShown = 0;
    roleCounts = {};
    settings.roles.forEach(function (role) { roleCounts[role] = 0; });
    people.forEach(function (p) {
      if (p.on_duty) onDuty += 1;
      var stale = isStale(p, now);
      p.stale = stale;
      if (!passesFilters(p)) return;
      roleCounts[p.role] = (roleCounts[p.role] || 0) + 1;
      if (filters.hiddenRoles.has(p.role)) return;
      if (stale) staleShown += 1;
      seen.add(p.id);
      var feature = {
        type: "Feature",
        id: p.id,
        geometry: { type: "Point", coordinates: project(p.lon, p.lat) },
        properties: {
          id: p.id,
          role: p.role,
          color: roleColor(p.role),
          stale: stale,
          moving: !stale && p.speed != null && p.speed > MOVING_MPS && p.heading != null,
          heading: p.heading || 0,
        },
      };
      var known = drawnFeatures.get(p.id);
      if (known && sameFeature(known, feature)) return;
      drawnFeatures.set(p.id, feature);
      changed.push(feature);
    });
    var removed = [];
    drawnFeatures.forEach(function (feature, id) {
      if (!seen.has(id)) removed.push(id);
    });
    removed.forEach(function (id) { drawnFeatures.delete(id); });
    if (!sourceSeeded) {
      sourceSeeded = true;
      source.setData({ type: "FeatureCollection", features: Array.from(drawnFeatures.values()) });
    } else if (changed.length || removed.length) {
      source.updateData({ add: changed, remove: removed });
    }
    drawSelected();
    document.getElementById("count-on-duty").textContent = onDuty;
    document.getElementById("count-shown").textContent = drawnFeatures.size;
    document.getElementById("count-stale").textContent = staleShown;
    renderRoleCounts();
    var hint = document.getElementById("search-hint");
    hint.hidden = !filters.search || drawnFeatures.size > 0;
    hint.textContent = t("search.no_match");
    if (selectedId !== null) renderCard();
    lastRenderMs = performance.now() - started;
  }

  function drawSelected() {
    var source = map.getSource("selected");
    if (!source) return;
    var p = selectedId === null ? null : people.get(selectedId);
    var coords = p ? project(p.lon, p.lat) : null;
    var key = coords ? coords.join(",") : "";
    if (key === drawSelected.key) return;
    drawSelected.key = key;
    source.setData({
      type: "FeatureCollection",
      features: coords ? [{ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: coords } }] : [],
    });
  }

  function renderRoleCounts() {
    var list = document.getElementById("role-list");
    Object.keys(roleCounts).forEach(function (role) {
      var item = list.querySelector('[data-role="' + CSS.escape(role) + '"]');
      if (!item) {
        item = document.createElement("li");
        item.dataset.role = role;
        var label = document.createElement("label");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.checked = !filters.hiddenRoles.has(role);
        box.addEventListener("change", function () {
          if (box.checked) filters.hiddenRoles.delete(role);
          else filters.hiddenRoles.add(role);
          scheduleRender();
        });
        var dot = document.createElement("span");
        dot.className = "role-dot";
        dot.style.background = roleColor(role);
        var name = document.createElement("span");
        name.textContent = roleName(role);
        var count = document.createElement("span");
        count.className = "count";
        label.append(box, dot, name, count);
        item.append(label);
        list.append(item);
      }
      item.querySelector(".count").textContent = roleCounts[role];
    });
  }

  // Staleness depends on the clock, not only on updates: redraw when someone turns grey.
  setInterval(function () {
    var now = Date.now();
    var changed = false;
    people.forEach(function (p) {
      if (p.stale !== isStale(p, now)) changed = true;
    });
    if (changed) scheduleRender();
    else if (selectedId !== null) renderCard();
  }, 1000);

  // Other scripts of the page (command.js) plug into the map's clicks here.
  var hooks = { placeClick: null, gridClick: null };

  // --- data -----------------------------------------------------------------------
  function recordFrom(item) {
    return {
      id: item.person_id,
      name: item.name,
      role: item.role,
      unit_id: item.unit_id,
      on_duty: item.on_duty,
      ts: Date.parse(item.ts),
      lon: item.lon,
      lat: item.lat,
      accuracy: item.accuracy,
      speed: item.speed,
      heading: item.heading,
      battery: item.battery,
    };
  }

  /** Merge fixes into the state; an older fix never replaces a newer one. */
  function merge(records) {
    records.forEach(function (record) {
      var known = people.get(record.id);
      if (known && known.ts >= record.ts) return;
      record.stale = known ? known.stale : undefined;
      people.set(record.id, record);
      if (record.id === selectedId) {
        trail.push([record.lon, record.lat, record.ts]);
        drawTrail();
        if (document.getElementById("card-follow").checked) {
          map.easeTo({ center: project(record.lon, record.lat), duration: 500 });
        }
      }
    });
  }

  /** Apply one `positions` push from /live. */
  function applyPositions(batch) {
    merge(batch.map(recordFrom));
    scheduleRender();
    fitOnce();
  }

  function featureToItem(feature) {
    var props = Object.assign({}, feature.properties);
    props.lon = feature.geometry.coordinates[0];
    props.lat = feature.geometry.coordinates[1];
    return props;
  }

  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (response.status === 401) {
        window.location.assign("/login");
        throw new Error("session: log in first");
      }
      if (!response.ok) throw new Error(url + ": HTTP " + response.status);
      return response.json();
    });
  }

  /** Send JSON (the CSRF rule wants JSON, same origin); reject with the server's error. */
  function sendJson(method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) throw new Error(answer.error || "HTTP " + response.status);
        return answer;
      });
    });
  }

  function viewportBbox() {
    var bounds = map.getBounds();
    var padLon = (bounds.getEast() - bounds.getWest()) * 0.25;
    var padLat = (bounds.getNorth() - bounds.getSouth()) * 0.25;
    var sw = unproject(bounds.getWest() - padLon, bounds.getSouth() - padLat);
    var ne = unproject(bounds.getEast() + padLon, bounds.getNorth() + padLat);
    return [
      Math.max(-180, sw[0]), Math.max(-90, sw[1]), Math.min(180, ne[0]), Math.min(90, ne[1]),
    ];
  }

  /** Replace the state with /api/v1/live (after a (re)connect, nothing shown is stale). */
  function resync() {
    var url = "/api/v1/live";
    if (narrowed) url += "?bbox=" + viewportBbox().join(",");
    return fetchJson(url).then(function (collection) {
      var records = collection.features.map(function (f) { return recordFrom(featureToItem(f)); });
      if (!narrowed) {
        var present = new Set(records.map(function (r) { return r.id; }));
        Array.from(people.keys()).forEach(function (id) {
          if (!present.has(id)) people.delete(id);
        });
      }
      merge(records);
      if (!narrowed && people.size > settings.viewport_min_people) {
        narrowed = true;
        subscribeViewport();
      }
      scheduleRender();
      fitOnce();
      document.body.dataset.synced = String(Date.now());
    });
  }

  function subscribeViewport() {
    socket.emit("subscribe", { bbox: narrowed ? viewportBbox() : null });
  }

  // --- units ----------------------------------------------------------------------
  function loadUnits() {
    return fetchJson("/api/v1/units").then(function (collection) {
      collection.features.forEach(function (f) {
        var p = f.properties;
        units.set(p.unit_id, {
          id: p.unit_id, name: p.name, kind: p.kind, parent_id: p.parent_id,
          label_point: p.label_point, geometry: f.geometry, children: [],
        });
      });
      units.forEach(function (unit) {
        var parent = units.get(unit.parent_id);
        if (parent) parent.children.push(unit);
      });
      var shapes = collection.features
        .filter(function (f) { return f.geometry; })
        .map(function (f) {
          return {
            type: "Feature",
            properties: { id: f.id, kind: f.properties.kind },
            geometry: projectGeometry(f.geometry),
          };
        });
      map.getSource("units").setData({ type: "FeatureCollection", features: shapes });
      units.forEach(function (unit) {
        if (!unit.label_point) return;
        var el = document.createElement("div");
        el.className = "unit-label";
        el.dataset.unit = unit.id;
        el.dataset.kind = unit.kind;
        var name = document.createElement("span");
        name.textContent = unit.name;
        var badge = document.createElement("span");
        badge.className = "coverage-badge";
        el.append(name, badge);
        unit.labelEl = el;
        new maplibregl.Marker({ element: el })
          .setLngLat(project(unit.label_point[0], unit.label_point[1]))
          .addTo(map);
      });
      renderUnitTree();
    });
  }

  function projectGeometry(geometry) {
    function ring(coords) { return coords.map(function (c) { return project(c[0], c[1]); }); }
    if (geometry.type === "Polygon") {
      return { type: "Polygon", coordinates: geometry.coordinates.map(ring) };
    }
    return {
      type: "MultiPolygon",
      coordinates: geometry.coordinates.map(function (poly) { return poly.map(ring); }),
    };
  }

  function unitSubtree(unit, into) {
    into.add(unit.id);
    unit.children.forEach(function (child) { unitSubtree(child, into); });
    return into;
  }

  function renderUnitTree() {
    var container = document.getElementById("unit-tree");
    var roots = Array.from(units.values()).filter(function (u) { return !units.has(u.parent_id); });
    function node(unit) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.dataset.unit = unit === null ? "" : unit.id;
      button.textContent = unit === null ? t("all_units") : unit.name;
      button.addEventListener("click", function () { selectUnit(unit); });
      li.append(button);
      if (unit && unit.children.length) {
        var ul = document.createElement("ul");
        unit.children.forEach(function (child) { ul.append(node(child)); });
        li.append(ul);
      }
      return li;
    }
    var ul = document.createElement("ul");
    ul.append(node(null));
    roots.forEach(function (root) { ul.append(node(root)); });
    container.replaceChildren(ul);
    markActiveUnit();
  }

  function markActiveUnit() {
    document.querySelectorAll("#unit-tree button").forEach(function (b) {
      b.classList.toggle("active", b.dataset.unit === String(filters.unitId === null ? "" : filters.unitId));
    });
  }

  function selectUnit(unit) {
    filters.unitId = unit ? unit.id : null;
    filters.unitIds = unit ? unitSubtree(unit, new Set()) : null;
    markActiveUnit();
    scheduleRender();
    if (unit) {
      var bounds = new maplibregl.LngLatBounds();
      unitSubtree(unit, new Set()).forEach(function (id) { extendBounds(bounds, units.get(id).geometry); });
      if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 60, maxZoom: 16 });
    }
  }

  function extendBounds(bounds, geometry) {
    if (!geometry) return;
    var polys = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    polys.forEach(function (poly) {
      poly[0].forEach(function (c) { bounds.extend(project(c[0], c[1])); });
    });
  }

  /** Frame the scope's units and people once, when the first data is in. */
  function fitOnce() {
    if (firstFit) return;
    var bounds = new maplibregl.LngLatBounds();
    units.forEach(function (unit) { extendBounds(bounds, unit.geometry); });
    people.forEach(function (p) { bounds.extend(project(p.lon, p.lat)); });
    if (bounds.isEmpty()) return;
    firstFit = true;
    map.fitBounds(bounds, { padding: 60, maxZoom: 16, duration: 0 });
  }

  // --- selection, trail and follow --------------------------------------------------
  function drawTrail() {
    var source = map.getSource("trail");
    if (!source) return;
    var coords = trail.map(function (c) { return project(c[0], c[1]); });
    var features = coords.length > 1
      ? [{ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: coords } }]
      : [];
    source.setData({ type: "FeatureCollection", features: features });
  }

  function startOfToday() {
    var day = new Date();
    day.setHours(0, 0, 0, 0);
    return day.toISOString();
  }

  function selectPerson(id) {
    selectedId = id;
    trail = [];
    trailSummary = null;
    drawTrail();
    drawSelected();
    document.getElementById("person-card").hidden = id === null;
    if (id === null) return;
    document.getElementById("card-follow").checked = false;
    renderCard();
    fetchJson("/api/v1/people/" + id + "/track?from=" + encodeURIComponent(startOfToday()))
      .then(function (feature) {
        if (selectedId !== id) return;
        var g = feature.geometry;
        var fixes = !g ? [] : g.type === "Point" ? [g.coordinates] : g.coordinates;
        // Fixes pushed while the track loaded are already in `trail`: keep those it lacks.
        var endedAt = feature.properties.ended_at ? Date.parse(feature.properties.ended_at) : 0;
        trail = fixes.concat(trail.filter(function (fix) { return fix[2] > endedAt; }));
        trailSummary = feature.properties;
        drawTrail();
        renderCard();
      });
  }

  function renderCard() {
    var p = people.get(selectedId);
    if (!p) return;
    document.getElementById("card-name").textContent = p.name;
    document.getElementById("card-dot").style.background = p.stale ? STALE_COLOR : roleColor(p.role);
    fillDetails(document.getElementById("card-details"), p);
    var summary = "";
    if (trailSummary) {
      summary = trailSummary.points
        ? t("trail.points", { n: trailSummary.points, km: (trailSummary.distance_m / 1000).toFixed(2) })
        : t("trail.none");
    }
    document.getElementById("card-trail").textContent = summary;
  }

  document.getElementById("card-close").addEventListener("click", function () { selectPerson(null); });
  document.getElementById("card-follow").addEventListener("change", function (event) {
    var p = people.get(selectedId);
    if (event.target.checked && p) map.easeTo({ center: project(p.lon, p.lat), zoom: Math.max(map.getZoom(), 15) });
  });

  var hoverPopup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, offset: 10 });
  function popupContent(p) {
    var box = document.createElement("div");
    var name = document.createElement("div");
    name.className = "popup-name";
    name.textContent = p.name;
    var dl = document.createElement("dl");
    dl.className = "details";
    fillDetails(dl, p);
    box.append(name, dl);
    return box;
  }

  mapReady.then(function () {
    map.on("mousemove", "people", function (event) {
      var p = people.get(event.features[0].properties.id);
      if (!p) return;
      map.getCanvas().style.cursor = "pointer";
      hoverPopup.setLngLat(project(p.lon, p.lat)).setDOMContent(popupContent(p)).addTo(map);
    });
    map.on("mouseleave", "people", function () {
      map.getCanvas().style.cursor = "";
      hoverPopup.remove();
    });
    // One click handler: a mode (placing an incident) takes the click first, then a
    // person under the pointer, then the grid under it.
    map.on("click", function (event) {
      var lngLat = unproject(event.lngLat.lng, event.lngLat.lat);
      if (hooks.placeClick) {
        hooks.placeClick(lngLat[0], lngLat[1]);
        return;
      }
      var box = [[event.point.x - 4, event.point.y - 4], [event.point.x + 4, event.point.y + 4]];
      var hit = map.queryRenderedFeatures(box, { layers: ["people"] });
      if (hit.length) {
        selectPerson(hit[0].properties.id);
        return;
      }
      var grids = map.queryRenderedFeatures(event.point, { layers: ["units-fill"] })
        .filter(function (f) { return f.properties.kind === "grid"; });
      if (grids.length && hooks.gridClick) hooks.gridClick(grids[0].properties.id);
    });
    map.on("moveend", function () {
      if (!narrowed || !socket.connected) return;
      subscribeViewport();
      resync();
    });
  });

  // --- filters --------------------------------------------------------------------
  document.querySelectorAll("[data-duty]").forEach(function (button) {
    button.addEventListener("click", function () {
      filters.duty = button.dataset.duty;
      document.querySelectorAll("[data-duty]").forEach(function (b) { b.classList.toggle("active", b === button); });
      scheduleRender();
    });
  });
  var search = document.getElementById("search");
  search.addEventListener("input", function () {
    filters.search = search.value.trim().toLowerCase();
    scheduleRender();
  });
  search.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !filters.search) return;
    var match = Array.from(people.values()).find(function (p) { return passesFilters(p) && !filters.hiddenRoles.has(p.role); });
    if (match) {
      selectPerson(match.id);
      map.easeTo({ center: project(match.lon, match.lat), zoom: Math.max(map.getZoom(), 15) });
    }
  });

  // --- header ---------------------------------------------------------------------
  document.getElementById("account").textContent =
    settings.user.username + " · " + (messages["staff." + settings.user.role] || settings.user.role);
  var statusEl = document.getElementById("live-status");
  function setStatus(state) {
    statusEl.dataset.state = state;
    statusEl.textContent = t("status." + state);
  }
  setStatus("connecting");

  var socket = io("/live", { transports: ["websocket"], autoConnect: false });
  document.getElementById("logout").addEventListener("click", function () {
    fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" }).finally(function () {
      socket.disconnect();
      window.location.assign("/login");
    });
  });

  socket.on("connect", function () {
    setStatus("live");
    if (narrowed) subscribeViewport();
    resync();
  });
  socket.on("disconnect", function () { setStatus("offline"); });
  socket.on("connect_error", function () {
    setStatus("offline");
    // A refused connection is not retried by the client: find out whether the session ended.
    fetchJson("/api/v1/session").then(function () {
      if (!socket.active) setTimeout(function () { socket.connect(); }, 2000);
    });
  });
  socket.on("positions", function (message) { applyPositions(message.positions); });

  mapReady.then(loadUnits).then(function () { socket.connect(); });

  // A handle for the browser tests and the benchmark: what the map's source really holds.
  window.__tracker = {
    map: map,
    ready: mapReady,
    socket: socket,
    settings: settings,
    t: t,
    roleName: roleName,
    ageText: ageText,
    project: project,
    fetchJson: fetchJson,
    sendJson: sendJson,
    hooks: hooks,
    units: units,
    people: people,
    selectPerson: selectPerson,
    applyPositions: applyPositions,
    renderNow: render,
    lastRenderMs: function () { return lastRenderMs; },
    peopleCount: function () { return people.size; },
    drawn: function (id) {
      var found = drawnFeatures.get(id);
      if (!found) return null;
      return {
        lon: found.geometry.coordinates[0],
        lat: found.geometry.coordinates[1],
        stale: found.properties.stale,
        moving: found.properties.moving,
        role: found.properties.role,
        color: found.properties.stale ? STALE_COLOR : found.properties.color,
      };
    },
    drawnIds: function () { return Array.from(drawnFeatures.keys()); },
  };
})();
