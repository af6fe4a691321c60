/* Entry of the admin page that reads a GeoJSON file and posts it to /api/v1/units/import. */
import { request } from "./api.js";
import { t } from "./i18n.js";
import { el } from "./ui.js";

const input = document.getElementById("import-file");
const submit = document.getElementById("import-submit");
const result = document.getElementById("import-result");
let chosen = null;

function show(state, title, sections) {
  result.hidden = false;
  result.dataset.state = state;
  result.replaceChildren(el("h2", null, title));
  (sections || []).forEach(function (section) {
    if (section.text) result.append(el("p", "import-error", section.text));
    if (section.hint) result.append(el("p", "muted small", section.hint));
    if (!section.items) return;
    const block = el("div", "report-block");
    block.dataset.list = section.key;
    block.append(el("h3", null, section.title + " (" + section.items.length + ")"));
    const list = el("ul");
    section.items.forEach(function (item) { list.append(el("li", null, item)); });
    if (!section.items.length) list.append(el("li", "muted", t("none")));
    block.append(list);
    result.append(block);
  });
}

input.addEventListener("change", function () {
  chosen = input.files[0] || null;
  document.getElementById("import-file-name").textContent = chosen ? chosen.name : t("import.choose");
  submit.disabled = !chosen;
  result.hidden = true;
});

document.getElementById("import-form").addEventListener("submit", function (event) {
  event.preventDefault();
  if (!chosen) return;
  submit.disabled = true;
  chosen.text().then(function (text) {
    let doc;
    try {
      doc = JSON.parse(text);
    } catch (error) {
      show("error", t("import.failed"), [{ text: t("import.not_json", { detail: error.message }) }]);
      return null;
    }
    return request("POST", "/api/v1/units/import", doc).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) {
          show("error", t("import.failed"), [
            { text: answer.message || answer.error || "HTTP " + response.status },
            { hint: t("import.nothing") },
          ]);
          return;
        }
        show("ok", t("import.done"), [
          { key: "created", title: t("import.created"), items: answer.created },
          { key: "updated", title: t("import.updated"), items: answer.updated },
          { key: "repaired", title: t("import.repaired"), items: answer.repaired },
        ]);
      });
    });
  }).catch(function (error) {
    show("error", t("import.failed"), [{ text: error.message }]);
  }).finally(function () { submit.disabled = false; });
});
