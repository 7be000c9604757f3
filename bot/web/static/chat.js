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

  function replaceMain(doc, keepFocus) {
    var fresh = doc.getElementById("contenu");
    var current = document.getElementById("contenu");
    if (!fresh || !current) { return false; }
    current.replaceWith(fresh);
    var latest = document.getElementById("derniere");
    if (latest) { latest.scrollIntoView({ block: "start" }); }
    announce(latestText(fresh));
    var input = document.getElementById("texte");
    if (input && keepFocus) { input.focus({ preventScroll: true }); }
    return true;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") { return; }
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    var submitter = event.submitter || null;
    var data = new FormData(form, submitter);
    if (submitter) { submitter.setAttribute("aria-busy", "true"); }
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(data),
      credentials: "same-origin",
      headers: { "Accept": "text/html", "X-PTCE-Fetch": "1" }
    }).then(function (response) {
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
