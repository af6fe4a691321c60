/* The incidents tab: the filtered, paged list, new incidents, and the incident panel that
 * closes the loop (send, cancel and reassign tasks, mark handled, verify and close, reopen,
 * cancel), live from the `incident` event on /live. The API is in docs/incidents.md.
 */
import { getJson, sendJson } from "./api.js";
import { ageText, clock, distanceText, lang, localName, roleName, t } from "./i18n.js";
import { button, el, showTab, toast } from "./ui.js";

const STATUS_COLORS = {
  open: "#d0021b",
  assigned: "#e67e22",
  accepted: "#2e86c1",
  done: "#27ae60",
  handled: "#16a085",
  closed: "#7f8c8d",
  cancelled: "#95a5a6",
};
const TASK_COLORS = {
  sent: "#e67e22",
  delivered: "#b9770e",
  accepted: "#2e86c1",
  declined: "#c0392b",
  done: "#27ae60",
  cancelled: "#95a5a6",
};
export const INCIDENT_STATUSES = ["open", "assigned", "accepted", "done", "handled", "closed", "cancelled"];
const ACTIVE_STATUSES = ["open", "assigned", "accepted", "done", "handled"];
const STANDING_TASKS = new Set(["sent", "delivered", "accepted"]);
const STEPS = [
  ["assigned_at", "step.sent"],
  ["delivered_at", "step.delivered"],
  ["accepted_at", "step.accepted"],
  ["declined_at", "step.declined"],
  ["done_at", "step.done"],
  ["cancelled_at", "step.cancelled"],
];
const PER_PAGE = 20;
const $ = (id) => document.getElementById(id);

/** Return the incident of an answer: the detail itself, or {incident: detail}. */
function detailOf(answer) {
  if (answer && answer.incident && answer.incident.id != null) return answer.incident;
  return answer && answer.id != null && answer.tasks ? answer : null;
}

/** Return local midnight of a yyyy-mm-dd date, `days` later, as ISO-8601. */
function dayStart(value, days = 0) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + days).toISOString();
}

/** Run the incidents tab for a page with `base` (createMap) and `people` (createPeopleLayer). */
export function createIncidents({ base, people, socket, settings }) {
  const { map } = base;
  const canDispatch = settings.user.role === "admin" || settings.user.role === "dispatcher";
  const categories = new Map(); // id -> {id, zh, en}
  const list = { statuses: new Set(ACTIVE_STATUSES), category: "", unitId: "", from: "", to: "", page: 1 };
  let rows = [];
  let total = 0;
  let current = null; // {detail, candidates}
  let action = null; // the open action form: {key, taskId, form}
  let placing = null; // the pin of a new incident
  const markers = new Map();

  const statusLabel = (status) => t(`status_incident.${status}`);
  const taskLabel = (status) => t(`status_task.${status}`);
  const categoryName = (id) => (id == null ? t("none") : categories.has(id) ? localName(categories.get(id)) : id);

  // --- the list -------------------------------------------------------------------
  function query() {
    const params = new URLSearchParams({ page: list.page, per_page: PER_PAGE });
    if (list.statuses.size && list.statuses.size < INCIDENT_STATUSES.length) params.set("status", [...list.statuses].join(","));
    if (list.category) params.set("category", list.category);
    if (list.unitId) params.set("unit_id", list.unitId);
    if (list.from) params.set("from", dayStart(list.from));
    if (list.to) params.set("to", dayStart(list.to, 1));
    return params;
  }

  /** Return whether an incident row passes the list's filters (for live updates). */
  function matches(row) {
    if (list.statuses.size && !list.statuses.has(row.status)) return false;
    if (list.category && row.category !== list.category) return false;
    if (list.unitId) {
      const unit = base.units.get(Number(list.unitId));
      if (!unit || !base.unitSubtree(unit).has(row.unit_id)) return false;
    }
    const created = Date.parse(row.created_at);
    if (list.from && created < Date.parse(dayStart(list.from))) return false;
    if (list.to && created >= Date.parse(dayStart(list.to, 1))) return false;
    return true;
  }

  async function load() {
    const answer = await getJson(`/api/v1/incidents?${query()}`);
    if (answer.total == null) {
      // A server without filters or paging: apply them here.
      const all = answer.incidents.filter(matches);
      total = all.length;
      rows = all.slice((list.page - 1) * PER_PAGE, list.page * PER_PAGE);
    } else {
      total = answer.total;
      rows = answer.incidents;
    }
    renderList();
  }

  function renderList() {
    const ul = $("incident-list");
    ul.replaceChildren();
    $("incident-empty").hidden = rows.length > 0;
    for (const row of rows) {
      const li = el("li", "incident-item");
      li.dataset.incidentId = row.id;
      li.dataset.status = row.status;
      li.style.setProperty("--status", STATUS_COLORS[row.status] || "#66717d");
      const top = el("div", "alert-top");
      const pill = el("span", "pill pill-status", statusLabel(row.status));
      pill.style.setProperty("--status", STATUS_COLORS[row.status] || "#66717d");
      top.append(pill, el("strong", "grow ellipsis", `#${row.id} ${row.description}`), el("time", "muted small", clock(row.created_at)));
      li.append(top);
      if (row.category) li.append(el("div", "muted small", categoryName(row.category)));
      li.addEventListener("click", () => openIncident(row.id));
      ul.append(li);
    }
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    $("incident-page").textContent = t("incident.page", { page: list.page, pages, total });
    $("incident-prev").disabled = list.page <= 1;
    $("incident-next").disabled = list.page >= pages;
    drawMarkers();
  }

  function drawMarkers() {
    const wanted = new Map();
    for (const row of rows) if (row.status !== "closed" && row.status !== "cancelled") wanted.set(row.id, row);
    if (current) wanted.set(current.detail.id, current.detail);
    for (const [id, row] of wanted) {
      let marker = markers.get(id);
      if (!marker) {
        const pin = el("div", "incident-pin");
        pin.addEventListener("click", (event) => {
          event.stopPropagation();
          openIncident(id);
        });
        marker = base.marker(pin, row.lon, row.lat).addTo(map);
        markers.set(id, marker);
      }
      const pin = marker.getElement();
      pin.dataset.status = row.status;
      pin.dataset.incidentId = id;
      pin.title = row.description;
      pin.classList.toggle("active", current?.detail.id === id);
    }
    for (const [id, marker] of markers) {
      if (wanted.has(id)) continue;
      marker.remove();
      markers.delete(id);
    }
  }

  function renderStatusChips() {
    const box = $("incident-status-filter");
    box.replaceChildren();
    for (const status of INCIDENT_STATUSES) {
      const chip = button("chip", statusLabel(status), () => {
        if (list.statuses.has(status)) list.statuses.delete(status);
        else list.statuses.add(status);
        reloadFromFirst();
      });
      chip.dataset.statusFilter = status;
      chip.style.setProperty("--status", STATUS_COLORS[status]);
      chip.classList.toggle("active", list.statuses.has(status));
      chip.setAttribute("aria-pressed", String(list.statuses.has(status)));
      box.append(chip);
    }
    const preset = list.statuses.size === ACTIVE_STATUSES.length && ACTIVE_STATUSES.every((s) => list.statuses.has(s))
      ? "active" : list.statuses.size === 0 || list.statuses.size === INCIDENT_STATUSES.length ? "all" : "";
    for (const b of document.querySelectorAll("[data-incident-filter]")) b.classList.toggle("active", b.dataset.incidentFilter === preset);
  }

  function reloadFromFirst() {
    list.page = 1;
    renderStatusChips();
    load();
  }

  for (const b of document.querySelectorAll("[data-incident-filter]")) {
    b.addEventListener("click", () => {
      list.statuses = new Set(b.dataset.incidentFilter === "active" ? ACTIVE_STATUSES : INCIDENT_STATUSES);
      reloadFromFirst();
    });
  }
  $("incident-category-filter").addEventListener("change", (event) => {
    list.category = event.target.value;
    reloadFromFirst();
  });
  $("incident-unit-filter").addEventListener("change", (event) => {
    list.unitId = event.target.value;
    reloadFromFirst();
  });
  $("incident-from").addEventListener("change", (event) => {
    list.from = event.target.value;
    reloadFromFirst();
  });
  $("incident-to").addEventListener("change", (event) => {
    list.to = event.target.value;
    reloadFromFirst();
  });
  $("incident-prev").addEventListener("click", () => {
    list.page = Math.max(1, list.page - 1);
    load();
  });
  $("incident-next").addEventListener("click", () => {
    list.page += 1;
    load();
  });

  async function loadCategories() {
    let answer = [];
    try {
      answer = await getJson("/api/v1/incident-categories");
    } catch {
      // An older server without categories: incidents show the category's id.
    }
    const entries = Array.isArray(answer) ? answer : answer.categories || [];
    for (const entry of entries) categories.set(entry.id, entry);
    for (const select of [$("incident-category-filter"), $("incident-category")]) {
      const first = select.options[0];
      select.replaceChildren(first);
      for (const entry of categories.values()) {
        const option = el("option", null, localName(entry));
        option.value = entry.id;
        select.append(option);
      }
    }
    renderList();
  }

  /** Fill the unit filter from the units in scope (call after they are loaded). */
  function fillUnits() {
    const select = $("incident-unit-filter");
    const first = select.options[0];
    select.replaceChildren(first);
    const add = (unit, depth) => {
      const option = el("option", null, `${"\u00a0\u00a0".repeat(depth)}${unit.name}`);
      option.value = unit.id;
      select.append(option);
      for (const child of unit.children) add(child, depth + 1);
    };
    for (const unit of base.units.values()) if (!base.units.has(unit.parent_id)) add(unit, 0);
  }

  // --- views and the new-incident form ---------------------------------------------
  function showView(view) {
    $("incident-browse").hidden = view !== "list";
    $("incident-form").hidden = view !== "form";
    $("incident-detail").hidden = view !== "detail";
  }

  function setPlacing(on) {
    document.body.classList.toggle("placing", on);
    $("place-hint").hidden = !on;
    people.hooks.placeClick = on ? placeAt : null;
  }

  function placeAt(lon, lat) {
    $("incident-lat").value = lat.toFixed(6);
    $("incident-lon").value = lon.toFixed(6);
    placing ??= base.marker(el("div", "incident-pin new"), lon, lat);
    placing.setLngLat(base.project(lon, lat)).addTo(map);
    setPlacing(false);
    showTab("incidents");
    showView("form");
    $("incident-description").focus();
  }

  const clearPin = () => placing?.remove();

  const newButton = $("new-incident");
  newButton.hidden = !canDispatch;
  newButton.addEventListener("click", () => {
    showTab("incidents");
    showView("form");
    $("incident-error").hidden = true;
    setPlacing(true);
  });
  $("incident-cancel").addEventListener("click", () => {
    setPlacing(false);
    clearPin();
    showView("list");
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && people.hooks.placeClick) setPlacing(false);
  });
  $("incident-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("incident-error");
    const body = {
      lat: parseFloat($("incident-lat").value),
      lon: parseFloat($("incident-lon").value),
      description: $("incident-description").value.trim(),
    };
    if ($("incident-category").value) body.category = $("incident-category").value;
    const problem = !Number.isFinite(body.lat) || !Number.isFinite(body.lon)
      ? t("incident.need_point") : !body.description ? t("incident.need_description") : null;
    error.textContent = problem || "";
    error.hidden = !problem;
    if (problem) return;
    setPlacing(false);
    try {
      const answer = await sendJson("POST", "/api/v1/incidents", body);
      clearPin();
      $("incident-description").value = "";
      closeAction();
      current = { detail: answer.incident, candidates: answer.candidates };
      upsertRow(answer.incident);
      renderIncident();
      showView("detail");
      // The create answer may not carry the full detail (tasks, history, photos) yet.
      if (!answer.incident.history) refreshCurrent();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
    }
  });

  // --- the incident panel --------------------------------------------------------------
  async function openIncident(id) {
    showTab("incidents");
    const detail = await getJson(`/api/v1/incidents/${id}`);
    if (current?.detail.id !== id) closeAction();
    current = { detail, candidates: current?.detail.id === id ? current.candidates : null };
    renderIncident();
    renderList();
    showView("detail");
    base.flyTo(detail.lon, detail.lat);
    if (canDispatch && !["closed", "cancelled"].includes(detail.status)) loadCandidates(id);
  }

  async function refreshCurrent() {
    if (!current) return;
    const detail = await getJson(`/api/v1/incidents/${current.detail.id}`);
    if (current?.detail.id === detail.id) applyIncident(detail);
  }

  async function loadCandidates(id) {
    const answer = await getJson(`/api/v1/incidents/${id}/candidates`);
    if (current?.detail.id !== id) return;
    current.candidates = answer.candidates;
    renderIncident();
  }

  $("incident-back").addEventListener("click", () => {
    current = null;
    closeAction();
    showView("list");
    renderList();
  });

  function pill(className, label, color) {
    const node = el("span", `pill pill-status ${className}`, label);
    node.style.setProperty("--status", color || "#66717d");
    return node;
  }

  function unreachableNote() {
    return el("div", "unreachable small", t("incident.unreachable"));
  }

  function renderIncident() {
    const detail = current.detail;
    const box = $("incident-body");
    box.dataset.incidentId = detail.id;
    box.dataset.status = detail.status;
    box.replaceChildren();
    const head = el("div", "panel-head");
    head.append(el("h3", null, `#${detail.id} ${detail.description}`));
    head.append(pill("incident-status", statusLabel(detail.status), STATUS_COLORS[detail.status]));
    box.append(head);
    box.append(renderFacts(detail));
    if (detail.photos?.length) box.append(renderPhotos(detail.photos));
    if (canDispatch) box.append(renderActions(detail));

    box.append(el("h4", null, t("incident.tasks")));
    const tasks = detail.tasks || [];
    if (!tasks.length) box.append(el("p", "muted small empty", t("incident.no_tasks")));
    const ul = el("ul", "task-list");
    for (const task of tasks) ul.append(renderTask(detail, task));
    box.append(ul);
    if (action?.taskId != null) {
      const anchor = ul.querySelector(`[data-task-id="${action.taskId}"]`);
      if (anchor) anchor.after(action.form);
      else closeAction();
    }

    if (canDispatch && ["open", "assigned", "accepted", "done"].includes(detail.status) && current.candidates) {
      box.append(renderCandidates(detail));
    }

    box.append(el("h4", null, t("incident.history")));
    const history = el("ol", "history");
    for (const h of detail.history || []) {
      const li = el("li");
      li.dataset.kind = h.kind;
      li.append(el("time", "muted small", clock(h.at)));
      const main = el("div", "grow");
      const line = el("div");
      line.append(el("strong", "history-kind", t(`history_kind.${h.kind}`)));
      const who = [h.by, h.person_name].filter(Boolean).join(" → ");
      if (who) line.append(el("span", "history-who", ` · ${who}`));
      main.append(line);
      if (h.note) main.append(el("div", "history-note small", h.note));
      li.append(main);
      history.append(li);
    }
    box.append(history);
    drawMarkers();
  }

  function renderFacts(detail) {
    const dl = el("dl", "details incident-facts");
    const reporter = detail.reported_by?.name;
    const creator = (detail.history || []).find((h) => h.kind === "created")?.by;
    const rows = [
      ["category", t("incident.category"), categoryName(detail.category)],
      reporter ? ["reporter", t("incident.reporter"), reporter] : null,
      !reporter && creator ? ["creator", t("incident.creator"), creator] : null,
      ["created", t("incident.created"), clock(detail.created_at)],
      ["place", t("incident.place"), `${detail.lat.toFixed(5)}, ${detail.lon.toFixed(5)}`],
      detail.handled_at ? ["handled", t("incident.handled_at"), clock(detail.handled_at)] : null,
      detail.closed_at ? ["closed", t("incident.closed_at"), clock(detail.closed_at)] : null,
    ];
    for (const row of rows.filter(Boolean)) {
      const dt = el("dt", null, row[1]);
      const dd = el("dd", null, row[2]);
      dd.dataset.fact = row[0];
      dl.append(dt, dd);
    }
    return dl;
  }

  function renderPhotos(photos) {
    const strip = el("div", "photo-strip");
    for (const photo of photos) {
      const img = el("img", "photo-thumb");
      img.src = photo.url;
      img.alt = t("incident.photo");
      img.loading = "lazy";
      img.dataset.photoId = photo.id;
      img.addEventListener("click", () => enlarge(photo.url));
      strip.append(img);
    }
    return strip;
  }

  function enlarge(url) {
    const overlay = el("div", "lightbox");
    overlay.id = "lightbox";
    const img = el("img");
    img.src = url;
    img.alt = t("incident.photo");
    const close = button("icon lightbox-close", "×");
    close.setAttribute("aria-label", t("close"));
    overlay.append(img, close);
    const remove = () => {
      overlay.remove();
      document.removeEventListener("keydown", onKey);
    };
    const onKey = (event) => {
      if (event.key === "Escape") remove();
    };
    overlay.addEventListener("click", remove);
    document.addEventListener("keydown", onKey);
    document.body.append(overlay);
  }

  function renderActions(detail) {
    const bar = el("div", "incident-actions");
    const s = detail.status;
    const path = `/api/v1/incidents/${detail.id}`;
    const choices = [
      ["handle", ["open", "assigned", "accepted", "done"].includes(s), true, "primary-small"],
      ["close", s === "handled", false, "primary-small"],
      ["reopen", ["handled", "closed", "cancelled"].includes(s), true, "small-button"],
      ["cancel", ["open", "assigned", "accepted", "done"].includes(s), true, "small-button danger"],
    ];
    for (const [key, shown, noteRequired, className] of choices) {
      if (!shown) continue;
      const b = button(`${className} action-${key}`, t(`action.${key}`), () =>
        openAction({
          key,
          title: t(`action.${key}.title`),
          noteRequired,
          anchor: bar,
          submit: ({ note }) => sendJson("POST", `${path}/${key}`, { note }),
        }));
      b.dataset.action = key;
      bar.append(b);
    }
    const wrap = el("div");
    wrap.append(bar);
    if (action && action.taskId == null) wrap.append(action.form);
    return wrap;
  }

  function renderTask(detail, task) {
    const li = el("li", "task");
    li.dataset.person = task.person_id;
    li.dataset.status = task.status;
    li.dataset.taskId = task.id;
    const main = el("div", "grow");
    main.append(el("div", "name", task.name));
    const steps = STEPS.filter(([field]) => task[field]).map(([field, key]) => `${t(key)} ${clock(task[field])}`);
    main.append(el("div", "muted small task-steps", steps.join(" · ")));
    if (task.distance_m != null) main.append(el("div", "muted small", distanceText(task.distance_m)));
    if (task.reachable === false) main.append(unreachableNote());
    if (task.note) main.append(el("div", "small task-note", task.note));
    const side = el("div", "task-side");
    side.append(pill("task-status", taskLabel(task.status), TASK_COLORS[task.status]));
    if (canDispatch && STANDING_TASKS.has(task.status) && !["closed", "cancelled"].includes(detail.status)) {
      const path = `/api/v1/incidents/${detail.id}/tasks/${task.id}`;
      const row = el("div", "task-buttons");
      row.append(
        button("small-button task-reassign", t("action.reassign"), () => openAction({
          key: "reassign",
          taskId: task.id,
          title: t("action.reassign.title", { name: task.name }),
          noteRequired: false,
          picker: task,
          submit: ({ note, personId }) => sendJson("POST", `${path}/reassign`, { person_id: personId, note }),
        })),
        button("small-button danger task-cancel", t("action.cancel_task"), () => openAction({
          key: "cancel_task",
          taskId: task.id,
          title: t("action.cancel_task.title", { name: task.name }),
          noteRequired: false,
          submit: ({ note }) => sendJson("POST", `${path}/cancel`, { note }),
        })),
      );
      side.append(row);
    }
    li.append(main, side);
    return li;
  }

  /** Return who may be sent (again): not those with a standing or finished task. */
  function busyPeople(detail) {
    return new Set((detail.tasks || []).filter((task) => STANDING_TASKS.has(task.status) || task.status === "done")
      .map((task) => task.person_id));
  }

  function renderCandidates(detail) {
    const wrap = el("div", "candidates");
    wrap.append(el("h4", null, t("incident.candidates")));
    const busy = busyPeople(detail);
    const candidates = current.candidates.filter((c) => !busy.has(c.person_id));
    if (!candidates.length) wrap.append(el("p", "muted small empty", t("incident.no_candidates")));
    const ul = el("ul", "candidate-list");
    candidates.forEach((c, index) => {
      const li = el("li");
      li.dataset.person = c.person_id;
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.value = c.person_id;
      const main = el("div", "grow");
      main.append(el("div", "name", `${index + 1}. ${c.name}`));
      main.append(el("div", "muted small", `${roleName(c.role)} · ${ageText(Date.parse(c.ts))}`));
      if (c.reachable === false) main.append(unreachableNote());
      label.append(box, main, el("strong", "distance", distanceText(c.distance_m)));
      li.append(label);
      ul.append(li);
    });
    wrap.append(ul);
    if (candidates.length) {
      const assign = button("primary-small", t("incident.assign"), async () => {
        const ids = [...ul.querySelectorAll("input:checked")].map((b) => Number(b.value));
        if (!ids.length) return;
        assign.disabled = true;
        try {
          applyAnswer(await sendJson("POST", `/api/v1/incidents/${detail.id}/assign`, { person_ids: ids }));
        } catch (failure) {
          toast({ kind: "error", title: t("incident.assign_failed"), body: failure.message });
          assign.disabled = false;
        }
      });
      assign.id = "assign-selected";
      wrap.append(assign);
    }
    return wrap;
  }

  // --- action forms -----------------------------------------------------------------
  function closeAction() {
    action?.form.remove();
    action = null;
  }

  /** Return the <select> of people to reassign a task to: nearest first, then the scope. */
  function personPicker(task) {
    const select = el("select", "action-person");
    select.setAttribute("aria-label", t("action.pick_person"));
    const busy = busyPeople(current.detail);
    busy.add(task.person_id);
    const placeholder = el("option", null, t("action.pick_person"));
    placeholder.value = "";
    select.append(placeholder);
    const listed = new Set();
    const nearest = (current.candidates || []).filter((c) => !busy.has(c.person_id));
    if (nearest.length) {
      const group = el("optgroup");
      group.label = t("incident.candidates");
      for (const c of nearest) {
        const option = el("option", null, `${c.name} · ${distanceText(c.distance_m)}${c.reachable === false ? " · GPS" : ""}`);
        option.value = c.person_id;
        listed.add(c.person_id);
        group.append(option);
      }
      select.append(group);
    }
    const others = [...people.people.values()].filter((p) => !busy.has(p.id) && !listed.has(p.id))
      .sort((a, b) => a.name.localeCompare(b.name, lang === "zh_CN" ? "zh-CN" : "en"));
    if (others.length) {
      const group = el("optgroup");
      group.label = t("action.people_in_scope");
      for (const p of others) {
        const option = el("option", null, `${p.name} · ${roleName(p.role)}${p.on_duty ? "" : ` · ${t("popup.off_duty")}`}`);
        option.value = p.id;
        group.append(option);
      }
      select.append(group);
    }
    return select;
  }

  function openAction({ key, taskId = null, title, noteRequired, picker = null, submit, anchor }) {
    closeAction();
    const form = el("form", "action-form");
    form.noValidate = true;
    form.dataset.action = key;
    form.append(el("strong", null, title));
    const select = picker ? personPicker(picker) : null;
    if (select) form.append(select);
    const note = el("textarea", "action-note");
    note.rows = 2;
    note.maxLength = 500;
    note.placeholder = noteRequired ? t("action.note_required") : t("action.note_optional");
    form.append(note);
    const error = el("p", "form-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    const confirm = el("button", "primary-small action-confirm", t(`action.${key}`));
    confirm.type = "submit";
    const buttons = el("div", "form-actions");
    buttons.append(button("secondary action-dismiss", t("action.back"), closeAction), confirm);
    form.append(error, buttons);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = note.value.trim();
      const personId = select ? Number(select.value) : null;
      const problem = select && !personId ? t("action.need_person")
        : noteRequired && !text ? t("action.need_note") : null;
      error.textContent = problem || "";
      error.hidden = !problem;
      if (problem) return;
      confirm.disabled = true;
      try {
        const answer = await submit({ note: text || null, personId });
        closeAction();
        applyAnswer(answer);
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
        confirm.disabled = false;
      }
    });
    action = { key, taskId, form };
    if (taskId != null) $("incident-body").querySelector(`[data-task-id="${taskId}"]`)?.after(form);
    else anchor.after(form);
    (select || note).focus();
  }

  /** Apply a change's answer: the incident it returns, else the incident read again. */
  function applyAnswer(answer) {
    const detail = detailOf(answer);
    if (detail) applyIncident(detail);
    else refreshCurrent();
    if (current && canDispatch) loadCandidates(current.detail.id).catch(() => {});
  }

  function upsertRow(detail) {
    const row = {
      id: detail.id, description: detail.description, status: detail.status, category: detail.category,
      unit_id: detail.unit_id, created_at: detail.created_at, lat: detail.lat, lon: detail.lon,
    };
    const index = rows.findIndex((r) => r.id === detail.id);
    if (index >= 0) {
      if (matches(row)) rows[index] = row;
      else {
        rows.splice(index, 1);
        total = Math.max(0, total - 1);
      }
    } else if (list.page === 1 && matches(row)) {
      rows.unshift(row);
      rows.sort((a, b) => b.id - a.id);
      if (rows.length > PER_PAGE) rows.length = PER_PAGE;
      total += 1;
    } else {
      return false;
    }
    return true;
  }

  /** Apply an incident's new state (from /live or an answer): list, pin and open panel. */
  function applyIncident(detail) {
    const known = rows.some((r) => r.id === detail.id) || current?.detail.id === detail.id;
    upsertRow(detail);
    if (current?.detail.id === detail.id) {
      current.detail = detail;
      renderIncident();
    }
    renderList();
    return known;
  }

  socket.on("incident", (detail) => {
    const known = applyIncident(detail);
    const reported = (detail.history || []).some((h) => h.kind === "reported");
    if (!known && reported && detail.status === "open" && (detail.tasks || []).length === 0) {
      toast({
        kind: "report",
        color: STATUS_COLORS.open,
        title: t("incident.reported_toast", { name: detail.reported_by?.name || "" }),
        body: [categoryName(detail.category), detail.description].filter(Boolean).join(" · "),
        onClick: () => openIncident(detail.id),
      });
    }
  });
  socket.on("connect", () => {
    load();
    if (current) refreshCurrent();
  });

  renderStatusChips();
  showView("list");
  loadCategories();

  return {
    openIncident,
    fillUnits,
    incident: () => (current ? current.detail : null),
    rows: () => rows.slice(),
    total: () => total,
  };
}
