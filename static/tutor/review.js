// The live review queue: cards built from the server's JSON, drafts streaming in,
// actions sent with fetch (CSRF-protected), the whole queue re-read on every reconnect.
"use strict";
(function () {
  const queue = document.getElementById("queue");
  if (!queue) return;
  const t = queue.dataset;
  const cards = document.getElementById("cards");
  const template = document.getElementById("card-template");
  const count = document.getElementById("queue-count");
  const status = document.getElementById("connection");
  const byId = new Map();
  const baseTitle = document.title;

  function setText(el, text) { if (el) el.textContent = text; }

  function refreshCount() {
    const n = byId.size;
    count.textContent = n === 0 ? t.textEmpty : n + " · " + t.textWaiting;
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
    let empty = cards.querySelector(".empty");
    if (n === 0 && !empty) {
      empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = t.textEmpty;
      cards.append(empty);
    } else if (n > 0 && empty) {
      empty.remove();
    }
  }

  function build(reply) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.id = reply.id;
    card.querySelectorAll("form").forEach(function (form) {
      form.action = form.action.replace("/0/", "/" + reply.id + "/");
      form.addEventListener("submit", function (event) { event.preventDefault(); act(card, form); });
    });
    card.querySelectorAll("textarea, input[name=instruction]").forEach(function (field, i) {
      field.id = "f" + reply.id + "-" + i;
      field.previousElementSibling.htmlFor = field.id;
    });
    card.querySelector("textarea.draft").addEventListener("input", function () { card.dataset.edited = "1"; });
    return card;
  }

  function render(reply) {
    if (reply.decided) { remove(reply.id); return; }
    let card = byId.get(reply.id);
    if (!card) {
      card = build(reply);
      byId.set(reply.id, card);
      cards.append(card);
    }
    card.className = "card review " + reply.status;
    card.dataset.attempt = reply.attempt;
    setText(card.querySelector(".student"), reply.student);
    setText(card.querySelector(".classroom"), reply.classroom);
    card.dataset.askedAt = reply.asked_at;
    setText(card.querySelector(".question"), reply.question);
    const history = card.querySelector(".history");
    const ol = history.querySelector("ol");
    ol.replaceChildren();
    reply.history.forEach(function (h) {
      const li = document.createElement("li");
      li.className = h.sender;
      li.textContent = (h.sender === "student" ? t.textStudent : t.textTutor) + ": " + h.text;
      ol.append(li);
    });
    history.hidden = reply.history.length === 0;
    const draft = card.querySelector("textarea.draft");
    if (!card.dataset.edited) draft.value = reply.draft;
    const state = card.querySelector(".state");
    if (reply.status === "queued") state.textContent = t.textQueued;
    else if (reply.status === "drafting") state.textContent = t.textDrafting;
    else if (reply.status === "failed") state.textContent = t.textFailed + " " + reply.failure;
    else state.textContent = "";
    card.querySelector("form.approve button").disabled = reply.status !== "awaiting_review";
    refreshCount();
  }

  function remove(id) {
    const card = byId.get(id);
    if (!card) return;
    byId.delete(id);
    const next = card.nextElementSibling;
    const hadFocus = card.contains(document.activeElement);
    card.remove();
    if (hadFocus && next && next.classList.contains("card")) focusCard(next);
    refreshCount();
  }

  function focusCard(card) {
    const draft = card.querySelector("textarea.draft");
    (draft || card).focus();
  }

  async function act(card, form) {
    const error = card.querySelector(".card-error");
    error.textContent = "";
    const buttons = card.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const data = await response.json();
      if (!response.ok) {
        error.textContent = data.error || response.statusText;
        if (response.status === 409) setTimeout(function () { remove(Number(card.dataset.id)); }, 4000);
      } else {
        delete card.dataset.edited;
        render(data.reply);
      }
    } catch (e) {
      error.textContent = t.textOffline;
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  const socket = window.TutorSocket(t.socket, {
    open: function () { status.textContent = ""; socket.send({ type: "sync" }); },
    close: function () { status.textContent = t.textOffline; },
    frame: function (frame) {
      if (frame.type === "queue") {
        const seen = new Set();
        cards.querySelectorAll("li.card:not([data-attempt]), li.empty").forEach(function (li) { li.remove(); });
        frame.replies.forEach(function (r) { seen.add(r.id); render(r); });
        Array.from(byId.keys()).forEach(function (id) { if (!seen.has(id)) remove(id); });
        refreshCount();
      } else if (frame.type === "reply") {
        render(frame.reply);
      } else if (frame.type === "progress") {
        const card = byId.get(frame.reply_id);
        if (card && Number(card.dataset.attempt) === frame.attempt && !card.dataset.edited) {
          card.querySelector("textarea.draft").value = frame.text;
        }
      }
    },
  });

  document.addEventListener("keydown", function (event) {
    const card = document.activeElement && document.activeElement.closest(".card.review");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && card) {
      event.preventDefault();
      card.querySelector("form.approve").requestSubmit();
      return;
    }
    const typing = /^(TEXTAREA|INPUT)$/.test(document.activeElement.tagName);
    if (typing) return;
    if (event.key === "j" || event.key === "k") {
      const all = Array.from(cards.querySelectorAll(".card.review"));
      if (!all.length) return;
      let i = card ? all.indexOf(card) : -1;
      i = event.key === "j" ? Math.min(all.length - 1, i + 1) : Math.max(0, i - 1);
      focusCard(all[i]);
    }
  });
})();
