/* Entry of /admin/staff: the staff accounts in scope; add, reset a password, disable, enable. */
import { getJson, sendJson } from "./api.js";
import { t } from "./i18n.js";
import { dateTime, fillUnits, loadUnits, option, say, staffRole } from "./admin-common.js";
import { button, el } from "./ui.js";

const $ = (id) => document.getElementById(id);
let units = [];

/** Show the outcome of an action on an account. */
function done(text) {
  say($("user-list-error"), "");
  say($("user-message"), text);
}

function failed(error) {
  say($("user-message"), "");
  say($("user-list-error"), error.message);
}

/** Return the row of one account, with its actions. */
function userRow(user) {
  const row = el("tr", user.active ? "" : "inactive");
  row.dataset.userId = String(user.id);
  row.dataset.username = user.username;
  const status = el("td", null);
  status.append(el("span", `tag ${user.active ? "tag-on" : "tag-off"}`, t(user.active ? "staff.active" : "staff.disabled")));
  const actions = el("td", "actions");
  const reset = el("form", "reset-form");
  reset.hidden = true;
  const password = el("input", null);
  password.type = "password";
  password.autocomplete = "new-password";
  password.placeholder = t("staff.new_password", { name: user.username });
  password.setAttribute("aria-label", password.placeholder);
  const save = el("button", "small-button", t("staff.reset_password"));
  save.type = "submit";
  reset.append(password, save);
  reset.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (password.value.length < 8) return failed(new Error(t("staff.short_password")));
    try {
      await sendJson("PATCH", `/api/v1/users/${user.id}`, { password: password.value });
      done(t("staff.password_set", { name: user.username }));
      await load();
    } catch (error) {
      failed(error);
    }
  });
  actions.append(
    button("small-button reset", t("staff.reset_password"), () => {
      reset.hidden = !reset.hidden;
      if (!reset.hidden) password.focus();
    }),
    button(`small-button toggle ${user.active ? "danger" : ""}`, t(user.active ? "staff.disable" : "staff.enable"), async () => {
      if (user.active && !window.confirm(t("staff.confirm_disable", { name: user.username }))) return;
      try {
        await sendJson("PATCH", `/api/v1/users/${user.id}`, { active: !user.active });
        done(t(user.active ? "staff.disabled_done" : "staff.enabled_done", { name: user.username }));
        await load();
      } catch (error) {
        failed(error);
      }
    }),
    reset,
  );
  row.append(
    el("td", "name", user.username), el("td", null, staffRole(user.role)), el("td", null, user.unit_name || t("all_units")),
    status, el("td", null, String(user.open_sessions ?? 0)), el("td", null, dateTime(user.created_at)), actions,
  );
  return row;
}

/** Load and draw the accounts. */
async function load() {
  const answer = await getJson("/api/v1/users");
  $("user-rows").replaceChildren(...answer.users.map(userRow));
}

$("user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    username: $("user-name").value.trim(),
    password: $("user-password").value,
    role: $("user-role").value,
    unit_id: $("user-unit").value ? Number($("user-unit").value) : null,
  };
  if (body.password.length < 8) return say($("user-error"), t("staff.short_password"));
  try {
    const user = await sendJson("POST", "/api/v1/users", body);
    say($("user-error"), "");
    $("user-name").value = "";
    $("user-password").value = "";
    done(t("staff.created", { name: user.username }));
    await load();
  } catch (error) {
    say($("user-error"), error.message);
  }
});

loadUnits().then((list) => {
  units = list;
  $("user-unit").replaceChildren(option("", t("all_units")));
  fillUnits($("user-unit"), units);
}).catch(() => {});
load().catch(failed);
