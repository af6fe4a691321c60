/* The one place that talks to the JSON API: same-origin credentials, JSON bodies.
 *
 * The server refuses a change unless it is a JSON request from the same origin (its CSRF
 * rule), so every POST/PUT/DELETE goes through `send` with Content-Type application/json.
 */

/** Return the raw response of a JSON request (`body` undefined sends none). */
export function request(method, url, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  return fetch(url, options);
}

/** Return a GET's JSON; a 401 sends the page to the login form. */
export async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("session: log in first");
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

/** Send JSON and return the answer; reject with the server's error text. */
export async function sendJson(method, url, body = {}) {
  const response = await request(method, url, body);
  const answer = await response.json().catch(() => ({}));
  // `message` is the same error in the reader's language, where the server words one.
  if (!response.ok) throw new Error(answer.message || answer.error || `HTTP ${response.status}`);
  return answer;
}

/** End this login on the server. */
export function endSession() {
  return fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" });
}
