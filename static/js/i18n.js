/* The page's strings and the formatting of facts the server sends (times, metres, ages).
 *
 * The server chooses the language (the `lang` cookie, else the browser's) and renders the
 * catalogue's strings for it into <script type="application/json" id="messages">.
 */
const source = document.getElementById("messages");
const messages = source ? JSON.parse(source.textContent) : {};

/** The page's language as the server names it: zh_CN or en. */
export const lang = document.body.dataset.lang === "en" ? "en" : "zh_CN";
const locale = lang === "zh_CN" ? "zh-CN" : "en-GB";

/** Return the message `key` in the page's language, with {name} placeholders filled. */
export function t(key, params = {}) {
  let text = messages[key] || key;
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, value);
  return text;
}

/** Return whether the catalogue has a string for `key`. */
export function has(key) {
  return Object.hasOwn(messages, key);
}

/** Return a person's role in the page's language. */
export function roleName(role) {
  return messages[`role.${role}`] || role;
}

/** Return how long ago an epoch-ms time was ("3 min ago"). */
export function ageText(ts) {
  const age = Math.max(0, Math.round((Date.now() - ts) / 1000));
  if (age < 60) return t("age.seconds", { n: age });
  if (age < 3600) return t("age.minutes", { n: Math.floor(age / 60) });
  if (age < 86400) return t("age.hours", { n: Math.floor(age / 3600) });
  return t("age.days", { n: Math.floor(age / 86400) });
}

/** Return an ISO time as a clock time, with the date when it is not today. */
export function clock(iso) {
  const date = new Date(iso);
  const sameDay = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return sameDay ? time : `${date.toLocaleDateString(locale, { month: "2-digit", day: "2-digit" })} ${time}`;
}

/** Return a distance in metres as "230 m" or "1.25 km". */
export function distanceText(metres) {
  if (metres == null) return t("none");
  return metres < 1000 ? t("unit.m", { n: Math.round(metres) }) : t("unit.km", { n: (metres / 1000).toFixed(2) });
}

/** Return the name of a {id, zh, en} catalogue entry (a category) in the page's language. */
export function localName(entry) {
  return lang === "zh_CN" ? entry.zh : entry.en;
}
