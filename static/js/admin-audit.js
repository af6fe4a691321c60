/* Entry of /admin/audit: search the audit trail, export it, export or erase a person. */
import { getJson, sendJson } from "./api.js";
import { has, t } from "./i18n.js";
import { dateTime, say } from "./admin-common.js";
import { el } from "./ui.js";

const $ = (id) => document.getElementById(id);
let nextBeforeId = null;

/** Return the search's query parameters from the form (dates as local midnights). */
function filters() {
  const params = new URLSearchParams();
  const person = $("audit-person").value.trim();
  const actor = $("audit-actor").value.trim();
  const action = $("audit-action").value.trim();
  if (person) params.set("person_id", person);
  if (actor) params.set("actor", actor);
  if (action) params.set("action", action);
  for (const [id, name, days] of [["audit-from", "from", 0], ["audit-to", "to", 1]]) {
    const value = $(id).value;
    if (!value) continue;
    const day = new Date(`${value}T00:00:00`);
    day.setDate(day.getDate() + days);
    params.set(name, day.toISOString());
  }
  return params;
}

/** Return an action's name in the page's language (its code when there is none). */
function actionName(action) {
  return has(`audit.action.${action}`) ? t(`audit.action.${action}`) : action;
}

/** Return what a row was about: "person 12", "unit 3". */
function target(event) {
  const kind = has(`audit.kind.${event.target_kind}`) ? t(`audit.kind.${event.target_kind}`) : event.target_kind;
  return event.target_id === null ? kind : `${kind} ${event.target_id}`;
}

/** Return a row's parameters or changed values as short text. */
function details(event) {
  const parts = [];
  if (event.before) parts.push(`${t("audit.before")} ${JSON.stringify(event.before)}`);
  if (event.after) parts.push(`${event.before ? t("audit.after") + " " : ""}${JSON.stringify(event.after)}`);
  return parts.join(" · ");
}

function row(event) {
  const tr = el("tr", null);
  tr.dataset.action = event.action;
  tr.append(
    el("td", null, dateTime(event.at)), el("td", "name", event.actor_name), el("td", null, event.address || t("none")),
    el("td", null, actionName(event.action)), el("td", null, target(event)), el("td", "small", details(event)),
  );
  return tr;
}

/** Run the search (or fetch the next, older page) and draw the rows. */
async function search(more = false) {
  const params = filters();
  if (more && nextBeforeId) params.set("before_id", String(nextBeforeId));
  say($("audit-error"), "");
  try {
    const answer = await getJson(`/api/v1/audit?${params}`);
    const rows = answer.events.map(row);
    if (more) $("audit-rows").append(...rows);
    else $("audit-rows").replaceChildren(...rows);
    nextBeforeId = answer.next_before_id;
    $("audit-more").hidden = !nextBeforeId;
    $("audit-empty").hidden = $("audit-rows").children.length > 0;
  } catch (error) {
    say($("audit-error"), error.message);
  }
  params.delete("before_id");
  $("audit-csv").href = `/api/v1/audit.csv?${params}`;
  showPersonActions(params.get("person_id"));
}

/** Offer a person's export and erasure when the search is about one person. */
function showPersonActions(personId) {
  const valid = personId && /^\d+$/.test(personId);
  $("person-actions").hidden = !valid;
  $("basis-form").hidden = !valid;
  if (!valid) return;
  $("person-actions-title").textContent = t("audit.person_actions", { id: personId });
  $("person-export-json").href = `/api/v1/people/${personId}/export.json`;
  $("person-export-gpx").href = `/api/v1/people/${personId}/export.gpx`;
  $("person-erase").dataset.personId = personId;
  $("basis-form").dataset.personId = personId;
}

$("basis-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const personId = Number($("basis-form").dataset.personId);
  const note = $("basis-note").value.trim();
  try {
    await sendJson("PUT", `/api/v1/people/${personId}/legal-basis`, { basis: $("basis").value, note: note || null });
    say($("person-message"), t("audit.basis_recorded", { id: personId }));
    await search();
  } catch (error) {
    say($("audit-error"), error.message);
  }
});

$("person-erase").addEventListener("click", async () => {
  const personId = Number($("person-erase").dataset.personId);
  if (!window.confirm(t("audit.confirm_erase", { id: personId }))) return;
  try {
    const answer = await sendJson("POST", `/api/v1/people/${personId}/erase`, { confirm: personId });
    say($("person-message"), t("audit.erased", { id: personId, positions: answer.erased.positions }));
    await search();
  } catch (error) {
    say($("audit-error"), error.message);
  }
});

$("audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});
$("audit-more").addEventListener("click", () => search(true));

const initial = new URLSearchParams(window.location.search);
if (initial.get("person_id")) $("audit-person").value = initial.get("person_id");
search();
