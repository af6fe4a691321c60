/* The command centre's panels on the live map: grid coverage, alerts and dispatch.
 *
 * Runs after map.js and uses its handle (window.__tracker): the map, the /live socket,
 * the catalogue and the JSON helpers. Coverage is re-read on a timer and after alerts;
 * alerts and incidents arrive live as `alert` and `incident` events on /live.
 */
(function () {
  "use strict";

  var tracker = window.__tracker;
  var map = tracker.map;
  var settings = tracker.settings;
  var t = tracker.t;
  var canDispatch = settings.user.role === "admin" || settings.user.role === "dispatcher";

  var ALERT_COLORS = {
    sos: "#d0021b",
    zone_exit: "#e67e22",
    zone_enter: "#27ae60",
    signal_lost: "#7d3c98",
    signal_back: "#2e86c1",
    low_battery: "#b7950b",
  };
  var STATUS_COLORS = { open: "#d0021b", assigned: "#e67e22", accepted: "#2e86c1", done: "#27ae60" };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function clock(iso) {
    var date = new Date(iso);
    var lang = settings.lang === "zh_CN" ? "zh-CN" : "en-GB";
    var sameDay = new Date().toDateString() === date.toDateString();
    var time = date.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return sameDay ? time : date.toLocaleDateString(lang, { month: "2-digit", day: "2-digit" }) + " " + time;
  }

  function distanceText(metres) {
    if (metres == null) return t("none");
    return metres < 1000 ? t("unit.m", { n: Math.round(metres) }) : t("unit.km", { n: (metres / 1000).toFixed(2) });
  }

  function personName(personId, fallback) {
    var p = tracker.people.get(personId);
    return fallback || (p ? p.name : "#" + personId);
  }

  function flyTo(lon, lat) {
    if (lon == null || lat == null) return;
    map.flyTo({ center: tracker.project(lon, lat), zoom: Math.max(map.getZoom(), 16), duration: 800 });
  }

  // --- tabs -----------------------------------------------------------------------
  function showTab(name) {
    document.querySelectorAll("[data-tab]").forEach(function (b) { b.classList.toggle("active", b.dataset.tab === name); });
    document.querySelectorAll("[data-panel]").forEach(function (p) { p.hidden = p.dataset.panel !== name; });
  }
  document.querySelectorAll("[data-tab]").forEach(function (button) {
    button.addEventListener("click", function () { showTab(button.dataset.tab); });
  });

  // --- sound ----------------------------------------------------------------------
  // Browsers allow audio only after the user has interacted with the page.
  var audio = null;
  function unlockAudio() {
    if (audio || !window.AudioContext) return;
    audio = new AudioContext();
  }
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  function beep(kind) {
    if (!audio) return;
    var count = kind === "sos" ? 3 : 1;
    for (var i = 0; i < count; i += 1) {
      var start = audio.currentTime + i * 0.22;
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = kind === "sos" ? 988 : 660;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(start);
      osc.stop(start + 0.18);
    }
  }

  // --- coverage -------------------------------------------------------------------
  var coverage = new Map(); // grid id -> {unit_id, name, inside, assigned, on_duty_inside}
  var selectedGridId = null;

  function refreshCoverage() {
    return tracker.fetchJson("/api/v1/coverage").then(function (answer) {
      var uncovered = 0;
      coverage = new Map();
      answer.grids.forEach(function (grid) {
        var state = grid.on_duty_inside > 0 ? "covered" : "uncovered";
        if (state === "uncovered") uncovered += 1;
        grid.state = state;
        coverage.set(grid.unit_id, grid);
        map.setFeatureState({ source: "units", id: grid.unit_id }, { coverage: state });
        var unit = tracker.units.get(grid.unit_id);
        if (unit && unit.labelEl) {
          unit.labelEl.dataset.coverage = state;
          unit.labelEl.querySelector(".coverage-badge").textContent =
            state === "uncovered" ? t("coverage.uncovered") : t("coverage.on_duty", { n: grid.on_duty_inside });
        }
      });
      document.getElementById("coverage-summary").textContent = answer.grids.length
        ? t("coverage.summary", { n: answer.grids.length, u: uncovered })
        : t("coverage.no_grids");
      document.getElementById("coverage-summary").dataset.uncovered = uncovered;
      document.body.dataset.coverageAt = String(Date.now());
      if (selectedGridId !== null) loadGrid(selectedGridId);
    }).catch(function () {});
  }

  function loadGrid(gridId) {
    return tracker.fetchJson("/api/v1/units/" + gridId + "/people").then(function (answer) {
      if (selectedGridId !== gridId) return;
      renderGrid(gridId, answer);
    });
  }

  function selectGrid(gridId) {
    selectedGridId = gridId;
    map.setFilter("units-selected", ["==", ["get", "id"], gridId === null ? -1 : gridId]);
    showTab("grid");
    if (gridId !== null) loadGrid(gridId);
  }
  tracker.hooks.gridClick = selectGrid;

  function renderGrid(gridId, answer) {
    var box = document.getElementById("grid-detail");
    var unit = tracker.units.get(gridId);
    box.replaceChildren();
    box.dataset.unit = gridId;
    var head = el("div", "panel-head");
    head.append(el("h3", null, unit ? unit.name : "#" + gridId));
    var state = answer.on_duty > 0 ? "covered" : "uncovered";
    var badge = el("span", "pill pill-" + state, answer.on_duty > 0 ? t("coverage.covered") : t("coverage.uncovered"));
    head.append(badge);
    box.append(head);
    var stats = el("div", "mini-stats");
    [["on_duty", answer.on_duty, t("grid.on_duty_inside")], ["inside", answer.inside, t("grid.inside")],
      ["assigned", answer.assigned, t("grid.assigned")]].forEach(function (row) {
      var stat = el("div", "mini-stat");
      stat.dataset.stat = row[0];
      stat.append(el("strong", null, row[1]), el("span", null, row[2]));
      stats.append(stat);
    });
    box.append(stats);
    if (!answer.people.length) {
      box.append(el("p", "muted empty", t("grid.nobody")));
      return;
    }
    var list = el("ul", "people-list");
    answer.people.forEach(function (p) {
      var li = el("li");
      li.dataset.person = p.person_id;
      var dot = el("span", "role-dot");
      dot.style.background = p.on_duty ? "#27ae60" : "#a3aab2";
      var main = el("div", "grow");
      main.append(el("div", "name", p.name));
      main.append(el("div", "muted small", tracker.roleName(p.role) +
        (p.ts ? " · " + tracker.ageText(Date.parse(p.ts)) : "")));
      var tags = el("div", "tags");
      if (p.inside) tags.append(el("span", "tag tag-inside", t("grid.tag_inside")));
      if (p.assigned) tags.append(el("span", "tag", t("grid.tag_assigned")));
      tags.append(el("span", "tag " + (p.on_duty ? "tag-on" : "tag-off"), p.on_duty ? t("popup.on_duty") : t("popup.off_duty")));
      li.append(dot, main, tags);
      li.addEventListener("click", function () {
        var known = tracker.people.get(p.person_id);
        if (known) {
          tracker.selectPerson(p.person_id);
          flyTo(known.lon, known.lat);
        }
      });
      list.append(li);
    });
    box.append(list);
  }

  // --- alerts ---------------------------------------------------------------------
  var alerts = [];
  var alertFilter = { kind: "", open: true };
  var freshIds = new Set();

  function kindLabel(kind) { return t("alert." + kind); }

  function loadAlerts() {
    var url = "/api/v1/alerts?limit=100";
    if (alertFilter.kind) url += "&kind=" + encodeURIComponent(alertFilter.kind);
    if (alertFilter.open) url += "&open=1";
    return tracker.fetchJson(url).then(function (answer) {
      alerts = answer.alerts;
      renderAlerts();
    });
  }

  function loadOpenCount() {
    return tracker.fetchJson("/api/v1/alerts?open=1&limit=1000").then(function (answer) {
      var badge = document.getElementById("alert-count");
      var sos = answer.alerts.some(function (a) { return a.kind === "sos"; });
      badge.textContent = answer.alerts.length;
      badge.hidden = answer.alerts.length === 0;
      badge.classList.toggle("sos", sos);
    });
  }

  function renderAlerts() {
    var list = document.getElementById("alert-list");
    list.replaceChildren();
    document.getElementById("alert-empty").hidden = alerts.length > 0;
    alerts.forEach(function (alert) {
      var li = el("li", "alert-item kind-" + alert.kind);
      li.dataset.alertId = alert.id;
      li.dataset.kind = alert.kind;
      li.dataset.acknowledged = alert.acknowledged_at ? "1" : "0";
      if (freshIds.has(alert.id)) li.classList.add("fresh");
      li.style.setProperty("--kind", ALERT_COLORS[alert.kind] || "#66717d");
      var top = el("div", "alert-top");
      top.append(el("span", "kind-badge", kindLabel(alert.kind)));
      top.append(el("strong", "alert-person", alert.person_name || personName(alert.person_id)));
      top.append(el("time", "muted small", clock(alert.ts)));
      li.append(top);
      if (alert.note) li.append(el("p", "alert-note", alert.note));
      var foot = el("div", "alert-foot");
      if (alert.acknowledged_at) {
        foot.append(el("span", "acked", t("alert.acknowledged_by", {
          user: alert.acknowledged_by || t("none"), time: clock(alert.acknowledged_at),
        })));
      } else if (canDispatch) {
        var ack = el("button", "small-button ack", t("alert.acknowledge"));
        ack.type = "button";
        ack.addEventListener("click", function (event) {
          event.stopPropagation();
          acknowledge(alert.id, ack);
        });
        foot.append(el("span", "muted small", t("alert.open")), ack);
      } else {
        foot.append(el("span", "muted small", t("alert.open")));
      }
      if (alert.lat == null) foot.append(el("span", "muted small", t("alert.no_location")));
      li.append(foot);
      li.addEventListener("click", function () {
        flyTo(alert.lon, alert.lat);
        if (tracker.people.has(alert.person_id)) tracker.selectPerson(alert.person_id);
      });
      list.append(li);
    });
  }

  function acknowledge(alertId, button) {
    button.disabled = true;
    tracker.sendJson("POST", "/api/v1/alerts/" + alertId + "/acknowledge", {})
      .catch(function (error) { toast({ kind: "error", title: t("alert.ack_failed"), body: error.message }); })
      .then(function () { return Promise.all([loadAlerts(), loadOpenCount()]); });
  }

  document.getElementById("alert-kind").addEventListener("change", function (event) {
    alertFilter.kind = event.target.value;
    loadAlerts();
  });
  document.querySelectorAll("[data-alert-open]").forEach(function (button) {
    button.addEventListener("click", function () {
      alertFilter.open = button.dataset.alertOpen === "1";
      document.querySelectorAll("[data-alert-open]").forEach(function (b) { b.classList.toggle("active", b === button); });
      loadAlerts();
    });
  });

  function toast(options) {
    var box = el("div", "toast kind-" + options.kind);
    box.setAttribute("role", "alert");
    box.style.setProperty("--kind", ALERT_COLORS[options.kind] || "#c0392b");
    var text = el("div", "grow");
    text.append(el("strong", null, options.title));
    if (options.body) text.append(el("div", "small", options.body));
    var close = el("button", "icon", "×");
    close.type = "button";
    close.setAttribute("aria-label", t("close"));
    close.addEventListener("click", function (event) { event.stopPropagation(); box.remove(); });
    box.append(text, close);
    if (options.onClick) box.addEventListener("click", function () { options.onClick(); box.remove(); });
    document.getElementById("toasts").prepend(box);
    // SOS stays until someone closes it; the rest fade after a while.
    if (options.kind !== "sos") setTimeout(function () { box.remove(); }, 8000);
    return box;
  }

  tracker.socket.on("alert", function (alert) {
    freshIds.add(alert.id);
    setTimeout(function () {
      freshIds.delete(alert.id);
      var item = document.querySelector('[data-alert-id="' + alert.id + '"]');
      if (item) item.classList.remove("fresh");
    }, 10000);
    beep(alert.kind);
    var tab = document.querySelector('[data-tab="alerts"]');
    tab.classList.add("flash");
    setTimeout(function () { tab.classList.remove("flash"); }, 3000);
    loadOpenCount();
    // The pushed alert carries ids only: the reloaded list names the person.
    loadAlerts().catch(function () {}).then(function () {
      var listed = alerts.find(function (a) { return a.id === alert.id; });
      toast({
        kind: alert.kind,
        title: kindLabel(alert.kind) + " · " + personName(alert.person_id, listed && listed.person_name),
        body: [clock(alert.ts), alert.note].filter(Boolean).join(" · "),
        onClick: function () {
          showTab("alerts");
          flyTo(alert.lon, alert.lat);
        },
      });
    });
    if (alert.kind !== "low_battery" && alert.kind !== "sos") refreshCoverage();
  });

  // --- incidents ------------------------------------------------------------------
  var incidents = new Map(); // id -> list row {id, description, status, created_at, lat, lon}
  var incidentFilter = "active";
  var current = null; // {detail, candidates}
  var placing = null; // the pin of a new incident
  var incidentMarkers = new Map();

  function statusLabel(status) { return t("status_incident." + status); }

  function loadIncidents() {
    return tracker.fetchJson("/api/v1/incidents").then(function (answer) {
      incidents = new Map();
      answer.incidents.forEach(function (row) { incidents.set(row.id, row); });
      renderIncidents();
    });
  }

  function renderIncidents() {
    var list = document.getElementById("incident-list");
    list.replaceChildren();
    var rows = Array.from(incidents.values()).sort(function (a, b) { return b.id - a.id; });
    if (incidentFilter === "active") rows = rows.filter(function (r) { return r.status !== "done"; });
    document.getElementById("incident-empty").hidden = rows.length > 0;
    rows.slice(0, 100).forEach(function (row) {
      var li = el("li", "incident-item");
      li.dataset.incidentId = row.id;
      li.dataset.status = row.status;
      var top = el("div", "alert-top");
      var pill = el("span", "pill", statusLabel(row.status));
      pill.style.setProperty("--status", STATUS_COLORS[row.status] || "#66717d");
      pill.classList.add("pill-status");
      top.append(pill, el("strong", "grow ellipsis", row.description), el("time", "muted small", clock(row.created_at)));
      li.append(top);
      li.addEventListener("click", function () { openIncident(row.id); });
      list.append(li);
    });
    drawIncidentMarkers();
  }

  function drawIncidentMarkers() {
    var wanted = new Set();
    incidents.forEach(function (row) {
      if (row.status === "done" && !(current && current.detail.id === row.id)) return;
      wanted.add(row.id);
      var marker = incidentMarkers.get(row.id);
      if (!marker) {
        var pin = el("div", "incident-pin");
        pin.addEventListener("click", function (event) { event.stopPropagation(); openIncident(row.id); });
        marker = new maplibregl.Marker({ element: pin, anchor: "bottom" })
          .setLngLat(tracker.project(row.lon, row.lat)).addTo(map);
        incidentMarkers.set(row.id, marker);
      }
      var element = marker.getElement();
      element.dataset.status = row.status;
      element.title = row.description;
      element.style.setProperty("--status", STATUS_COLORS[row.status] || "#66717d");
      element.classList.toggle("active", !!(current && current.detail.id === row.id));
    });
    incidentMarkers.forEach(function (marker, id) {
      if (wanted.has(id)) return;
      marker.remove();
      incidentMarkers.delete(id);
    });
  }

  document.querySelectorAll("[data-incident-filter]").forEach(function (button) {
    button.addEventListener("click", function () {
      incidentFilter = button.dataset.incidentFilter;
      document.querySelectorAll("[data-incident-filter]").forEach(function (b) { b.classList.toggle("active", b === button); });
      renderIncidents();
    });
  });

  function showIncidentView(view) {
    document.getElementById("incident-browse").hidden = view !== "list";
    document.getElementById("incident-form").hidden = view !== "form";
    document.getElementById("incident-detail").hidden = view !== "detail";
  }

  // New incident: a click on the map (or typed coordinates), a description, then candidates.
  function setPlacing(on) {
    document.body.classList.toggle("placing", on);
    document.getElementById("place-hint").hidden = !on;
    tracker.hooks.placeClick = on ? placeAt : null;
  }

  function placeAt(lon, lat) {
    document.getElementById("incident-lat").value = lat.toFixed(6);
    document.getElementById("incident-lon").value = lon.toFixed(6);
    showPin(lon, lat);
    setPlacing(false);
    showTab("incidents");
    showIncidentView("form");
    document.getElementById("incident-description").focus();
  }

  function showPin(lon, lat) {
    if (!placing) {
      placing = new maplibregl.Marker({ element: el("div", "incident-pin new"), anchor: "bottom" });
    }
    placing.setLngLat(tracker.project(lon, lat)).addTo(map);
  }

  function clearPin() {
    if (placing) placing.remove();
  }

  var newButton = document.getElementById("new-incident");
  newButton.hidden = !canDispatch;
  newButton.addEventListener("click", function () {
    showTab("incidents");
    showIncidentView("form");
    document.getElementById("incident-error").hidden = true;
    setPlacing(true);
  });
  document.getElementById("incident-cancel").addEventListener("click", function () {
    setPlacing(false);
    clearPin();
    showIncidentView("list");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && tracker.hooks.placeClick) setPlacing(false);
  });
  document.getElementById("incident-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var error = document.getElementById("incident-error");
    var body = {
      lat: parseFloat(document.getElementById("incident-lat").value),
      lon: parseFloat(document.getElementById("incident-lon").value),
      description: document.getElementById("incident-description").value.trim(),
    };
    if (!isFinite(body.lat) || !isFinite(body.lon)) {
      error.textContent = t("incident.need_point");
      error.hidden = false;
      return;
    }
    if (!body.description) {
      error.textContent = t("incident.need_description");
      error.hidden = false;
      return;
    }
    error.hidden = true;
    setPlacing(false);
    tracker.sendJson("POST", "/api/v1/incidents", body).then(function (answer) {
      clearPin();
      document.getElementById("incident-description").value = "";
      incidents.set(answer.incident.id, answer.incident);
      current = { detail: answer.incident, candidates: answer.candidates };
      renderIncidents();
      renderIncident();
      showIncidentView("detail");
    }).catch(function (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    });
  });

  function openIncident(id) {
    showTab("incidents");
    return tracker.fetchJson("/api/v1/incidents/" + id).then(function (detail) {
      current = { detail: detail, candidates: null };
      renderIncident();
      renderIncidents();
      showIncidentView("detail");
      flyTo(detail.lon, detail.lat);
      if (canDispatch && detail.status !== "done") loadCandidates(id);
    });
  }

  function loadCandidates(id) {
    return tracker.fetchJson("/api/v1/incidents/" + id + "/candidates").then(function (answer) {
      if (!current || current.detail.id !== id) return;
      current.candidates = answer.candidates;
      renderIncident();
    });
  }

  document.getElementById("incident-back").addEventListener("click", function () {
    current = null;
    showIncidentView("list");
    renderIncidents();
  });

  function renderIncident() {
    var detail = current.detail;
    var box = document.getElementById("incident-body");
    box.dataset.incidentId = detail.id;
    box.dataset.status = detail.status;
    box.replaceChildren();
    var head = el("div", "panel-head");
    head.append(el("h3", null, "#" + detail.id + " " + detail.description));
    var pill = el("span", "pill pill-status incident-status", statusLabel(detail.status));
    pill.style.setProperty("--status", STATUS_COLORS[detail.status]);
    head.append(pill);
    box.append(head);
    box.append(el("p", "muted small", t("incident.created_at", { time: clock(detail.created_at) }) +
      " · " + detail.lat.toFixed(5) + ", " + detail.lon.toFixed(5)));

    box.append(el("h4", null, t("incident.tasks")));
    if (!detail.tasks.length) box.append(el("p", "muted small empty", t("incident.no_tasks")));
    var tasks = el("ul", "task-list");
    detail.tasks.forEach(function (task) {
      var li = el("li");
      li.dataset.person = task.person_id;
      li.dataset.status = task.status;
      var main = el("div", "grow");
      main.append(el("div", "name", task.name));
      main.append(el("div", "muted small", distanceText(task.distance_m) + " · " + clock(task.assigned_at)));
      var status = el("span", "pill pill-status task-status", t("status_task." + task.status));
      status.style.setProperty("--status", STATUS_COLORS[task.status]);
      li.append(main, status);
      tasks.append(li);
    });
    box.append(tasks);

    if (canDispatch && detail.status !== "done" && current.candidates) {
      var assigned = new Set(detail.tasks.map(function (task) { return task.person_id; }));
      box.append(el("h4", null, t("incident.candidates")));
      var candidates = current.candidates.filter(function (c) { return !assigned.has(c.person_id); });
      if (!candidates.length) box.append(el("p", "muted small empty", t("incident.no_candidates")));
      var list = el("ul", "candidate-list");
      candidates.forEach(function (c, index) {
        var li = el("li");
        li.dataset.person = c.person_id;
        var label = el("label");
        var box2 = el("input");
        box2.type = "checkbox";
        box2.value = c.person_id;
        var main = el("div", "grow");
        main.append(el("div", "name", (index + 1) + ". " + c.name));
        main.append(el("div", "muted small", tracker.roleName(c.role) + " · " + tracker.ageText(Date.parse(c.ts))));
        label.append(box2, main, el("strong", "distance", distanceText(c.distance_m)));
        li.append(label);
        list.append(li);
      });
      box.append(list);
      if (candidates.length) {
        var assign = el("button", "primary-small", t("incident.assign"));
        assign.type = "button";
        assign.id = "assign-selected";
        assign.addEventListener("click", function () {
          var ids = Array.from(list.querySelectorAll("input:checked")).map(function (b) { return Number(b.value); });
          if (!ids.length) return;
          assign.disabled = true;
          tracker.sendJson("POST", "/api/v1/incidents/" + detail.id + "/assign", { person_ids: ids })
            .then(function (updated) { applyIncident(updated); })
            .catch(function (failure) { toast({ kind: "error", title: t("incident.assign_failed"), body: failure.message }); assign.disabled = false; });
        });
        box.append(assign);
      }
    }

    box.append(el("h4", null, t("incident.history")));
    var history = el("ol", "history");
    detail.history.forEach(function (h) {
      var li = el("li");
      li.dataset.kind = h.kind;
      li.append(el("time", "muted small", clock(h.at)));
      li.append(el("span", null, t("history." + h.kind, { person: h.person_name || "", user: h.by || "" })));
      history.append(li);
    });
    box.append(history);
  }

  /** Apply an incident's new state (from /live or an answer): list, pin and open panel. */
  function applyIncident(detail) {
    incidents.set(detail.id, {
      id: detail.id, description: detail.description, status: detail.status,
      unit_id: detail.unit_id, created_at: detail.created_at, lat: detail.lat, lon: detail.lon,
    });
    if (current && current.detail.id === detail.id) {
      current.detail = detail;
      renderIncident();
    }
    renderIncidents();
  }
  tracker.socket.on("incident", applyIncident);

  // --- start ----------------------------------------------------------------------
  tracker.socket.on("connect", function () {
    loadAlerts();
    loadOpenCount();
    loadIncidents();
    refreshCoverage();
  });
  setInterval(refreshCoverage, Math.max(1, settings.coverage_refresh_s) * 1000);
  showTab("alerts");
  showIncidentView("list");

  // A handle for the browser tests: what the panels hold.
  tracker.command = {
    coverage: function () {
      var out = {};
      coverage.forEach(function (grid, id) { out[id] = { state: grid.state, on_duty_inside: grid.on_duty_inside }; });
      return out;
    },
    gridState: function (id) {
      return map.getFeatureState({ source: "units", id: id }).coverage || null;
    },
    alerts: function () { return alerts.slice(); },
    incident: function () { return current ? current.detail : null; },
    refreshCoverage: refreshCoverage,
  };
})();
