/* Login form: post the credentials to /api/v1/session as JSON, then open the map. */
(function () {
  "use strict";
  var form = document.getElementById("login-form");
  var error = document.getElementById("login-error");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    fetch("/api/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({
        username: form.username.value.trim(),
        password: form.password.value,
      }),
    })
      .then(function (response) {
        if (response.ok) {
          window.location.assign("/");
          return;
        }
        if (response.status === 429) {
          // The server sends the wait as a number; the sentence comes from the catalogue.
          var wait = response.headers.get("Retry-After") || "60";
          error.textContent = form.dataset.msgThrottled.replace("{n}", wait);
        } else {
          error.textContent = response.status === 401 ? form.dataset.msgWrong : form.dataset.msgFailed;
        }
        error.hidden = false;
      })
      .catch(function () {
        error.textContent = form.dataset.msgFailed;
        error.hidden = false;
      });
  });
})();
