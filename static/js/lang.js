/* Language switch of the staff pages: remember the choice in a cookie and reload. */
(function () {
  "use strict";
  var cookie = document.body.dataset.langCookie || "lang";
  document.querySelectorAll("[data-lang-choice]").forEach(function (button) {
    button.addEventListener("click", function () {
      var lang = button.getAttribute("data-lang-choice");
      document.cookie = cookie + "=" + lang + "; path=/; max-age=31536000; SameSite=Lax";
      window.location.reload();
    });
  });
})();
