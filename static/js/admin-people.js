/* Entry of /admin: the people in scope, one person's form and phones, issuing and revoking. */
import { getJson, sendJson } from "./api.js";
import { roleName, t } from "./i18n.js";
import { dateTime, fillUnits, loadUnits, option, say, settings } from "./admin-common.js";
import { qrImage } from "./qr.js";
import { button, el } from "./ui.js";

const PER_PAGE = 20;
const $ = (id) => document.getElementById(id);
const filters = { q: $("filter-q"), unit_id: $("filter-unit"), role: $("filter-role"), on_duty: $("filter-duty"), active: $("filter-active") };
const form = {
  name: $("person-name"), role: $("person-role"), phone: $("person-phone"), unit: $("person-unit"), grid: $("person-grid"),
};
const state = { page: 1, pages: 1, person: null, units: [] };
// Starts or ends the person's shift: GPS apps have no duty button, and under the `on_duty`
// policy their positions are kept only during a shift.
const dutyToggle = button("small-button", "", toggleDuty);
dutyToggle.id = "person-duty";
dutyToggle.hidden = true;
$("person-active").after(dutyToggle);

for (const role of settings.roles) {
  filters.role.append(option(role, roleName(role)));
  form.role.append(option(role, roleName(role)));
}

/** Return the list's query string from the filters and the page. */
function query() {
  const params = new URLSearchParams({ page: String(state.page), per_page: String(PER_PAGE) });
  for (const [name, input] of Object.entries(filters)) {
    const value = input.value.trim();
    if (value) params.set(name, value);
  }
  return params.toString();
}

/** Return a table cell with a text. */
function cell(text, className) {
  return el("td", className, text == null || text === "" ? t("none") : text);
}

/** Load and draw one page of people. */
let listing = 0;
async function loadPeople() {
  const mine = ++listing;
  const answer = await getJson(`/api/v1/people?${query()}`);
  if (mine !== listing) return;
  state.pages = Math.max(1, Math.ceil(answer.total / answer.per_page));
  const rows = answer.people.map((person) => {
    const row = el("tr", person.active ? "" : "inactive");
    row.dataset.personId = String(person.id);
    row.tabIndex = 0;
    const duty = el("td", null);
    duty.append(el("span", `tag ${person.on_duty ? "tag-on" : "tag-off"}`, t(person.on_duty ? "admin.on_duty" : "admin.off_duty")));
    if (!person.active) duty.append(" ", el("span", "tag tag-inactive", t("admin.inactive")));
    row.append(
      cell(person.name, "name"), cell(roleName(person.role)), cell(person.phone, "mono"), cell(person.unit_name),
      cell(person.patrol_unit_name), duty, cell(dateTime(person.last_fix_at)), cell(String(person.devices ?? 0)),
    );
    row.addEventListener("click", () => openPerson(person.id));
    row.addEventListener("keydown", (event) => { if (event.key === "Enter") openPerson(person.id); });
    row.classList.toggle("selected", state.person?.id === person.id);
    return row;
  });
  $("people-rows").replaceChildren(...rows);
  say($("people-empty"), rows.length ? "" : t("admin.no_people"));
  $("people-page").textContent = t("admin.page", { page: answer.page, pages: state.pages, total: answer.total });
  $("people-prev").disabled = state.page <= 1;
  $("people-next").disabled = state.page >= state.pages;
  document.body.dataset.peopleLoaded = String(Number(document.body.dataset.peopleLoaded || 0) + 1);
}

function reload() {
  loadPeople().catch((error) => say($("people-empty"), error.message));
}

let typing = null;
filters.q.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { state.page = 1; reload(); }, 250);
});
for (const name of ["unit_id", "role", "on_duty", "active"]) {
  filters[name].addEventListener("change", () => { state.page = 1; reload(); });
}
$("people-filters").addEventListener("submit", (event) => event.preventDefault());
$("people-prev").addEventListener("click", () => { state.page -= 1; reload(); });
$("people-next").addEventListener("click", () => { state.page += 1; reload(); });

/** Show the panel with a person's form (a new person when `person` is null). */
function showForm(person) {
  state.person = person;
  $("person-panel").hidden = false;
  $("person-panel").dataset.personId = person ? String(person.id) : "";
  $("person-title").textContent = person ? t("admin.edit_person", { name: person.name }) : t("admin.new_person");
  form.name.value = person?.name || "";
  form.role.value = person?.role || settings.roles[0];
  form.phone.value = person?.phone || "";
  form.unit.value = person?.unit_id != null ? String(person.unit_id) : "";
  form.grid.value = person?.patrol_unit_id != null ? String(person.patrol_unit_id) : "";
  const toggle = $("person-active");
  toggle.hidden = !person;
  if (person) {
    toggle.textContent = t(person.active ? "admin.deactivate" : "admin.reactivate");
    toggle.classList.toggle("danger", person.active);
  }
  // A deactivated person's shift has ended, and none may start.
  dutyToggle.hidden = !person || !person.active;
  if (person) {
    dutyToggle.textContent = t(person.on_duty ? "admin.end_shift" : "admin.start_shift");
    dutyToggle.setAttribute("aria-pressed", String(person.on_duty));
  }
  say($("person-error"), "");
  say($("person-ok"), "");
  $("phones").hidden = !person || !person.active;
  if (person) drawDevices(person.devices || []);
  for (const row of document.querySelectorAll("#people-rows tr")) {
    row.classList.toggle("selected", person != null && row.dataset.personId === String(person.id));
  }
  form.name.focus();
}

let opening = 0;

/** Load a person with their phones and show them (only the latest of overlapping loads). */
async function openPerson(id) {
  const mine = ++opening;
  const person = await getJson(`/api/v1/people/${id}`);
  if (mine === opening) showForm(person);
}

/** Return the form's fields as the API takes them. */
function formBody() {
  return {
    name: form.name.value.trim(),
    role: form.role.value,
    phone: form.phone.value.trim() || null,
    unit_id: form.unit.value ? Number(form.unit.value) : null,
    patrol_unit_id: form.grid.value ? Number(form.grid.value) : null,
  };
}

$("person-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = formBody();
  if (!body.name) return say($("person-error"), t("admin.need_name"));
  const save = $("person-save");
  save.disabled = true;
  try {
    const creating = !state.person;
    const answer = creating
      ? await sendJson("POST", "/api/v1/people", body)
      : await sendJson("PATCH", `/api/v1/people/${state.person.id}`, body);
    await openPerson(answer.id);
    say($("person-ok"), creating ? t("admin.created", { name: answer.name }) : t("admin.saved"));
    reload();
  } catch (error) {
    say($("person-error"), error.message);
  } finally {
    save.disabled = false;
  }
});

$("person-active").addEventListener("click", async () => {
  const person = state.person;
  if (!person) return;
  if (person.active && !window.confirm(t("admin.confirm_deactivate", { name: person.name }))) return;
  try {
    await sendJson("PATCH", `/api/v1/people/${person.id}`, { active: !person.active });
    await openPerson(person.id);
    say($("person-ok"), t("admin.saved"));
    reload();
  } catch (error) {
    say($("person-error"), error.message);
  }
});

/** Start the open person's shift, or end it, and show them again. */
async function toggleDuty() {
  const person = state.person;
  if (!person) return;
  dutyToggle.disabled = true;
  try {
    const on = !person.on_duty;
    await sendJson("PUT", `/api/v1/people/${person.id}/duty`, { on });
    await openPerson(person.id);
    say($("person-ok"), t(on ? "admin.shift_started" : "admin.shift_ended", { name: person.name }));
    reload();
  } catch (error) {
    say($("person-error"), error.message);
  } finally {
    dutyToggle.disabled = false;
  }
}

$("add-person").addEventListener("click", () => showForm(null));
$("person-close").addEventListener("click", () => {
  state.person = null;
  $("person-panel").hidden = true;
  for (const row of document.querySelectorAll("#people-rows tr.selected")) row.classList.remove("selected");
});

/** Return what kind of client a device is, in the page's language. */
function clientName(client) {
  const key = `device.client.${client || "none"}`;
  const text = t(key);
  return text === key ? client : text;
}

/** Draw a person's phones, each with its revoke button. */
function drawDevices(devices) {
  const rows = devices.map((device) => {
    const row = el("tr", device.revoked_at ? "inactive" : "");
    row.dataset.deviceId = String(device.id);
    const status = device.revoked_at
      ? el("td", "muted", t("device.revoked", { time: dateTime(device.revoked_at) }))
      : el("td", "ok-text", t("device.in_use"));
    const actions = el("td", "actions");
    if (!device.revoked_at) {
      actions.append(button("small-button danger revoke", t("device.revoke"), () => revoke(device)));
    }
    row.append(
      cell(device.label), cell(clientName(device.client)), cell(dateTime(device.created_at)),
      cell(dateTime(device.last_seen_at)), status, actions,
    );
    return row;
  });
  $("device-rows").replaceChildren(...rows);
  say($("devices-empty"), rows.length ? "" : t("device.no_devices"));
}

/** Revoke a phone after asking, and show the person again. */
async function revoke(device) {
  if (!window.confirm(t("device.confirm_revoke", { label: device.label }))) return;
  try {
    await sendJson("POST", `/api/v1/devices/${device.id}/revoke`);
    await openPerson(device.person_id);
    reload();
  } catch (error) {
    say($("issue-error"), error.message);
  }
}

$("issue-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const person = state.person;
  if (!person) return;
  const submit = $("issue-submit");
  submit.disabled = true;
  say($("issue-error"), "");
  try {
    const label = $("issue-label").value.trim() || t("device.default_label");
    const answer = await sendJson("POST", `/api/v1/people/${person.id}/devices`, { label });
    $("issue-label").value = "";
    showIssued(person, answer);
    await openPerson(person.id);
    reload();
  } catch (error) {
    say($("issue-error"), error.message);
  } finally {
    submit.disabled = false;
  }
});

/** Show a new phone's pairing code and settings: the only time the token is shown. */
function showIssued(person, answer) {
  $("issued-name").textContent = person.name;
  $("issued-label").textContent = answer.label || "";
  $("issued-qr").replaceChildren(qrImage(answer.qr_svg, t("qr.scan")));
  const link = $("issued-link");
  link.textContent = answer.pairing_url;
  link.href = answer.pairing_url;
  const setup = answer.setup || {};
  $("setup-server").textContent = setup.server_url || "";
  $("setup-device").textContent = setup.device_id || "";
  $("setup-osmand").textContent = setup.osmand_url ? `${setup.osmand_url}?id=${setup.device_id}` : "";
  $("setup-owntracks").textContent = setup.owntracks_url || "";
  $("issued").hidden = false;
  $("issued-print").focus();
}

/** Hide the pairing card and forget its token. */
function hideIssued() {
  $("issued").hidden = true;
  for (const id of ["issued-qr", "issued-link", "setup-server", "setup-device", "setup-osmand", "setup-owntracks"]) {
    $(id).replaceChildren();
  }
  $("issued-link").href = "#";
}

$("issued-done").addEventListener("click", hideIssued);
$("issued-print").addEventListener("click", () => window.print());
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("issued").hidden) hideIssued();
});

loadUnits()
  .then((units) => {
    state.units = units;
    fillUnits(filters.unit_id, units);
    form.unit.replaceChildren(option("", t("admin.choose_unit")));
    fillUnits(form.unit, units);
    form.grid.replaceChildren(option("", t("admin.no_grid")));
    fillUnits(form.grid, units, { onlyGrids: true });
  })
  .catch((error) => say($("people-empty"), error.message))
  .finally(reload);
