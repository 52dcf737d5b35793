// The student's chat: sends questions over the socket, shows each state, and catches up
// from the last version it has after every reconnect. Text is inserted as text only.
"use strict";
(function () {
  const chat = document.getElementById("chat");
  if (!chat) return;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("question");
  const errorBox = document.getElementById("composer-error");
  const status = document.getElementById("connection");
  const t = chat.dataset;
  const maxChars = parseInt(t.maxChars, 10);
  let version = parseInt(t.version, 10) || 0;
  const unsent = [];  // questions typed while offline, each with its idempotency key

  function newId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).slice(0, 64);
  }

  function bodyText(m) {
    if (m.state === "reviewing") return t.textReviewing;
    if (m.state === "declined") return t.textDeclined;
    return m.text;
  }

  function render(m) {
    const hint = list.querySelector(".hint");
    if (hint) hint.remove();
    let li = list.querySelector('[data-id="' + m.id + '"]');
    if (!li && m.client_id) li = list.querySelector('[data-client-id="' + CSS.escape(m.client_id) + '"]:not([data-id])');
    if (!li) {
      li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "who";
      const body = document.createElement("div");
      body.className = "body";
      li.append(who, body);
      list.append(li);
    }
    li.dataset.id = m.id;
    if (m.client_id) li.dataset.clientId = m.client_id;
    li.className = "message " + m.sender + " " + m.state;
    li.querySelector(".who").textContent = m.sender === "student" ? t.textYou : t.textTutor;
    li.querySelector(".body").textContent = bodyText(m);
    li.scrollIntoView({ block: "end", behavior: "smooth" });
  }

  function showLocal(text, clientId, state) {
    let li = list.querySelector('[data-client-id="' + CSS.escape(clientId) + '"]');
    if (!li) {
      render({ id: "local-" + clientId, sender: "student", text: text, state: state, client_id: clientId });
      li = list.querySelector('[data-client-id="' + CSS.escape(clientId) + '"]');
      delete li.dataset.id;
    }
    li.className = "message student " + state;
    const note = li.querySelector(".note") || li.appendChild(document.createElement("span"));
    note.className = "note";
    note.textContent = state === "sending" ? t.textSending : "";
    return li;
  }

  const socket = window.TutorSocket(t.socket, {
    open: function () {
      status.textContent = "";
      chat.classList.remove("offline");
      socket.send({ type: "sync", since: version });
      while (unsent.length) socket.send(unsent.shift());
    },
    close: function () {
      status.textContent = t.textOffline;
      chat.classList.add("offline");
    },
    frame: function (frame) {
      if (frame.type === "messages") {
        frame.messages.forEach(render);
        version = Math.max(version, frame.version || 0);
      } else if (frame.type === "error") {
        errorBox.textContent = frame.message;
        if (frame.client_id) {
          const li = list.querySelector('[data-client-id="' + CSS.escape(frame.client_id) + '"]:not([data-id])');
          if (li) failed(li, frame.client_id);
        }
      }
    },
  });

  function failed(li, clientId) {
    li.className = "message student failed";
    const note = li.querySelector(".note");
    note.textContent = t.textFailed + " ";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link";
    retry.textContent = t.textRetry;
    retry.addEventListener("click", function () {
      errorBox.textContent = "";
      showLocal(li.querySelector(".body").textContent, clientId, "sending");
      send({ type: "ask", text: li.querySelector(".body").textContent, client_id: clientId });
    });
    note.append(retry);
  }

  function send(frame) {
    if (!socket.send(frame)) unsent.push(frame);  // sent once on reconnect, same key
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    errorBox.textContent = "";
    if (!text) return;
    if (text.length > maxChars) { errorBox.textContent = t.textTooLong; return; }
    const clientId = newId();
    showLocal(text, clientId, "sending");
    send({ type: "ask", text: text, client_id: clientId });
    input.value = "";
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
})();
