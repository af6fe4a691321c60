/* Language switch of the staff pages: remember the choice in a cookie and reload. */
const cookie = document.body.dataset.langCookie || "lang";
for (const button of document.querySelectorAll("[data-lang-choice]")) {
  button.addEventListener("click", () => {
    const lang = button.getAttribute("data-lang-choice");
    document.cookie = `${cookie}=${lang}; path=/; max-age=31536000; SameSite=Lax`;
    window.location.reload();
  });
}
