// Progressive enhancement of the chat page: the same forms, sent without reloading the page.
// Without this script every form still works (the server answers with a redirect to the page).
(function () {
  "use strict";
  var busy = false;

  function announce(text) {
    var region = document.getElementById("annonce");
    if (!region) { return; }
    region.textContent = "";
    // A short delay so that screen readers notice the change of an emptied live region.
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function latestText(root) {
    var parts = [];
    root.querySelectorAll(".msg.bot.latest .bubble").forEach(function (bubble) {
      parts.push(bubble.textContent.replace(/\s+/g, " ").trim());
    });
    return parts.join(" ");
  }

  function showError(doc) {
    var message = doc.getElementById("erreur");
    var text = message ? message.textContent : "Une erreur est survenue. Rechargez la page.";
    var notice = document.createElement("div");
    notice.className = "notice";
    notice.setAttribute("role", "alert");
    var paragraph = document.createElement("p");
    paragraph.textContent = text;
    notice.appendChild(paragraph);
    var composer = document.getElementById("saisie");
    composer.parentNode.insertBefore(notice, composer);
    announce(text);
  }

  function focusInput() {
    var input = document.getElementById("texte");
    if (input) { input.focus({ preventScroll: true }); }
  }

  function showLatest() {
    var latest = document.getElementById("derniere");
    if (latest) { latest.scrollIntoView({ block: "start" }); }
  }

  // The server's answer when this page was up to date: the turn's bubbles and the forms' new tokens.
  // The page then looks as a freshly loaded one would: older replies lose their buttons.
  function applyNews(news) {
    var list = document.querySelector("#conversation ol.messages");
    if (!list || typeof news.html !== "string") { return false; }
    list.querySelectorAll(".msg.welcome").forEach(function (item) { item.remove(); });
    list.querySelectorAll(".msg.latest").forEach(function (item) {
      item.classList.remove("latest");
      item.querySelectorAll("form.choices").forEach(function (form) { form.remove(); });
    });
    var anchor = document.getElementById("derniere");
    if (anchor) { anchor.removeAttribute("id"); anchor.removeAttribute("tabindex"); }
    var parsed = new DOMParser().parseFromString("<ol>" + news.html + "</ol>", "text/html").querySelector("ol");
    Array.prototype.slice.call(parsed.children).forEach(function (item) {
      var edited = list.querySelector('li[data-id="' + item.getAttribute("data-id") + '"]');
      if (edited) { edited.replaceWith(item); } else { list.appendChild(item); }
    });
    list.setAttribute("data-newest", String(news.newest));
    document.querySelectorAll("input[name=csrf]").forEach(function (field) { field.value = news.csrf; });
    document.querySelectorAll("input[name=turn]").forEach(function (field) { field.value = news.turn; });
    document.querySelectorAll("#contenu .notice").forEach(function (notice) { notice.remove(); });
    var main = document.getElementById("contenu");
    if (news.notices && main) { main.insertAdjacentHTML("afterbegin", news.notices); }
    document.querySelectorAll("details.panel[open]").forEach(function (panel) { panel.open = false; });
    var input = document.getElementById("texte");
    if (input) { input.value = ""; }
    showLatest();
    announce(latestText(list));
    focusInput();
    return true;
  }

  function replaceMain(doc, keepFocus) {
    var fresh = doc.getElementById("contenu");
    var current = document.getElementById("contenu");
    if (!fresh || !current) { return false; }
    current.replaceWith(fresh);
    showLatest();
    announce(latestText(fresh));
    if (keepFocus) { focusInput(); }
    return true;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") { return; }
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    var submitter = event.submitter || null;
    var data = new URLSearchParams(new FormData(form, submitter));
    var list = document.querySelector("#conversation ol.messages");
    if (list && list.hasAttribute("data-newest")) { data.set("shown", list.getAttribute("data-newest")); }
    if (submitter) { submitter.setAttribute("aria-busy", "true"); }
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json, text/html", "X-PTCE-Fetch": "1" }
    }).then(function (response) {
      var json = response.ok && (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (json) {
        return response.json().then(function (news) {
          if (submitter) { submitter.removeAttribute("aria-busy"); }
          if (!applyNews(news)) { window.location.assign("/"); }
        });
      }
      return response.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        if (!response.ok) {
          showError(doc);
          if (submitter) { submitter.removeAttribute("aria-busy"); }
          return;
        }
        if (!replaceMain(doc, true)) { window.location.assign("/"); }
      });
    }).catch(function () {
      showError(document.implementation.createHTMLDocument(""));
      if (submitter) { submitter.removeAttribute("aria-busy"); }
    }).then(function () { busy = false; });
  });

  if ("scrollRestoration" in window.history) { window.history.scrollRestoration = "manual"; }

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
    var input = document.getElementById("texte");
    var latest = document.getElementById("derniere");
    // Back in a conversation: show the latest reply from its start, the box ready for the next question.
    if (input && document.querySelector(".msg.user")) {
      if (latest && !window.location.hash) { latest.scrollIntoView({ block: "start" }); }
      input.focus({ preventScroll: true });
    }
  });
})();
