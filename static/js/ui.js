/* Small DOM helpers shared by the command centre's panels: elements, tabs and toasts. */
import { t } from "./i18n.js";

/** Return a new element with a class and a text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** Return a button of a class and a label. */
export function button(className, label, onClick) {
  const node = el("button", className, label);
  node.type = "button";
  if (onClick) node.addEventListener("click", onClick);
  return node;
}

/** Show one tab of the right-hand panel. */
export function showTab(name) {
  for (const tab of document.querySelectorAll("[data-tab]")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
}

/** Make the tab buttons switch panels. */
export function initTabs(first) {
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.addEventListener("click", () => showTab(tab.dataset.tab));
  }
  showTab(first);
}

/** Flash a tab for a few seconds. */
export function flashTab(name) {
  const tab = document.querySelector(`[data-tab="${name}"]`);
  tab.classList.add("flash");
  setTimeout(() => tab.classList.remove("flash"), 3000);
}

/** Show a toast; an SOS toast stays until closed, the rest fade after 8 s. */
export function toast({ kind, color, title, body, onClick }) {
  const box = el("div", `toast kind-${kind}`);
  box.setAttribute("role", "alert");
  box.style.setProperty("--kind", color || "#c0392b");
  const text = el("div", "grow");
  text.append(el("strong", null, title));
  if (body) text.append(el("div", "small", body));
  const close = button("icon", "×", (event) => {
    event.stopPropagation();
    box.remove();
  });
  close.setAttribute("aria-label", t("close"));
  box.append(text, close);
  if (onClick) {
    box.addEventListener("click", () => {
      onClick();
      box.remove();
    });
  }
  document.getElementById("toasts").prepend(box);
  if (kind !== "sos") setTimeout(() => box.remove(), 8000);
  return box;
}
