/* Entry of /admin/rosters: check a roster file, import it whole, print phones for the people. */
import { request, sendJson } from "./api.js";
import { roleName, t } from "./i18n.js";
import { fillUnits, loadUnits, say } from "./admin-common.js";
import { qrImage } from "./qr.js";
import { el } from "./ui.js";

const $ = (id) => document.getElementById(id);
const input = $("roster-file");
const state = { file: null, preview: null, personIds: [], units: new Map() };

/** Return the chosen file's bytes as base64 (what FileReader's data: URL carries). */
function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** Return the answer of posting the chosen file to a roster endpoint, failed or not.
 *
 * As JSON `{file_base64}`, not multipart: the server takes changes only as JSON (its
 * cross-site rule), and the roster endpoints read either.
 */
async function postFile(url) {
  const response = await request("POST", url, { file_base64: await fileBase64(state.file) });
  if (response.status === 401) window.location.assign("/login");
  const answer = await response.json().catch(() => ({}));
  return { response, answer };
}

/** Return a unit's name from the units in scope, else its id. */
function unitName(id) {
  if (id == null) return t("none");
  return state.units.get(id)?.name || `#${id}`;
}

/** Show the result box in a state with a title and a summary. */
function result(kind, title, summary) {
  const box = $("roster-result");
  box.hidden = false;
  box.dataset.state = kind;
  $("roster-status").textContent = title;
  $("roster-summary").textContent = summary || "";
}

/** Return an error's text without the column name it may start with ("角色: …"). */
function withoutColumn(message, column) {
  const match = /^([^:：]+)[:：]\s*/.exec(message || "");
  return match && match[1].trim() === column ? message.slice(match[0].length) : message;
}

/** Draw a preview's rows and errors; allow the import only when no row has an error. */
function drawPreview(preview) {
  state.preview = preview;
  const counts = { create: 0, update: 0, unchanged: 0 };
  const errors = [];
  const rows = preview.rows.map((row) => {
    if (!row.errors?.length) counts[row.action] = (counts[row.action] || 0) + 1;
    const tr = el("tr", row.errors?.length ? "has-error" : `action-${row.action}`);
    tr.dataset.row = String(row.row);
    tr.dataset.action = row.errors?.length ? "error" : row.action || "";
    const problems = el("td", "row-errors");
    for (const error of row.errors || []) {
      const message = withoutColumn(error.message || error.error, error.column);
      errors.push(t("roster.row_error", { row: row.row, column: error.column, message }));
      problems.append(el("div", null, `${error.column}: ${message}`));
    }
    const action = el("td", null);
    if (!row.errors?.length && row.action) action.append(el("span", `tag tag-${row.action}`, t(`roster.action.${row.action}`)));
    tr.append(
      el("td", "mono", String(row.row)), el("td", "name", row.name || t("none")), el("td", "mono", row.phone || t("none")),
      el("td", null, row.role ? roleName(row.role) : t("none")), el("td", null, unitName(row.unit_id)),
      el("td", null, unitName(row.patrol_unit_id)), action, problems,
    );
    return tr;
  });
  $("roster-rows").replaceChildren(...rows);
  $("roster-table").hidden = false;
  $("roster-errors").replaceChildren(...errors.map((text) => el("li", null, text)));
  const ok = preview.ok && errors.length === 0;
  const summary = t("roster.summary", counts);
  if (ok) result("ok", t("roster.ok"), summary);
  else result("error", t("roster.errors", { n: preview.rows.filter((r) => r.errors?.length).length }), summary);
  $("roster-import").disabled = !ok;
}

input.addEventListener("change", () => {
  state.file = input.files[0] || null;
  state.preview = null;
  $("roster-file-name").textContent = state.file ? state.file.name : t("roster.choose");
  $("roster-preview").disabled = !state.file;
  $("roster-import").disabled = true;
  $("roster-result").hidden = true;
  $("roster-table").hidden = true;
  $("issue-box").hidden = true;
});

$("roster-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.file) return;
  $("roster-preview").disabled = true;
  try {
    const { response, answer } = await postFile("/api/v1/roster/preview");
    if (answer.rows) drawPreview(answer);
    else result("error", t("roster.refused"), answer.message || answer.error || `HTTP ${response.status}`);
  } catch (error) {
    result("error", t("roster.refused"), error.message);
  } finally {
    $("roster-preview").disabled = false;
  }
});

$("roster-import").addEventListener("click", async () => {
  if (!state.file || !state.preview?.ok) return;
  $("roster-import").disabled = true;
  try {
    const { response, answer } = await postFile("/api/v1/roster/import");
    if (!response.ok) {
      if (answer.rows) drawPreview(answer);
      result("error", t("roster.refused"), answer.message || answer.error || `HTTP ${response.status}`);
      return;
    }
    state.personIds = answer.person_ids || [];
    result("ok", t("roster.imported", answer), "");
    $("roster-errors").replaceChildren();
    $("issue-box").hidden = state.personIds.length === 0;
    document.body.dataset.imported = "1";
  } catch (error) {
    result("error", t("roster.refused"), error.message);
    $("roster-import").disabled = false;
  }
});

$("sheet-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = $("sheet-issue");
  submit.disabled = true;
  say($("sheet-error"), "");
  try {
    const label = $("sheet-label").value.trim() || t("device.default_label");
    const answer = await sendJson("POST", "/api/v1/roster/devices", { person_ids: state.personIds, label });
    drawSheet(answer.devices, label);
    $("issue-box").hidden = true;
  } catch (error) {
    say($("sheet-error"), t("roster.issue_failed", { error: error.message }));
  } finally {
    submit.disabled = false;
  }
});

/** Draw one card per new phone: the QR code, the name and the link, ready to print. */
function drawSheet(devices, label) {
  const cards = devices.map((device) => {
    const card = el("figure", "sheet-card");
    card.dataset.personId = String(device.person_id);
    card.dataset.pairingUrl = device.pairing_url;
    card.append(qrImage(device.qr_svg, t("qr.scan")));
    const caption = el("figcaption", null);
    caption.append(el("strong", "sheet-name", device.name), el("span", "small muted", label), el("span", "small", t("qr.scan")));
    card.append(caption);
    return card;
  });
  $("sheet-cards").replaceChildren(...cards);
  $("sheet-title").textContent = t("roster.sheet_title", { n: devices.length });
  $("sheet").hidden = false;
  $("sheet").scrollIntoView();
}

$("sheet-print").addEventListener("click", () => window.print());

/** Point the export link at the chosen unit. */
function exportLink() {
  const unit = $("export-unit").value;
  $("export-link").href = `/api/v1/roster/export.xlsx${unit ? `?unit_id=${encodeURIComponent(unit)}` : ""}`;
}
$("export-unit").addEventListener("change", exportLink);

loadUnits().then((units) => {
  state.units = new Map(units.map((u) => [u.id, u]));
  fillUnits($("export-unit"), units);
}).catch(() => {});
