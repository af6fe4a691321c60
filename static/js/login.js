/* Login page: post the credentials to /api/v1/session as JSON, then open the map. */
import { request } from "./api.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

function show(text) {
  error.textContent = text;
  error.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  let response;
  try {
    response = await request("POST", "/api/v1/session", {
      username: form.username.value.trim(),
      password: form.password.value,
    });
  } catch {
    show(form.dataset.msgFailed);
    return;
  }
  if (response.ok) {
    window.location.assign("/");
  } else if (response.status === 429) {
    // The server sends the wait as a number; the sentence comes from the catalogue.
    show(form.dataset.msgThrottled.replace("{n}", response.headers.get("Retry-After") || "60"));
  } else {
    show(response.status === 401 ? form.dataset.msgWrong : form.dataset.msgFailed);
  }
});
