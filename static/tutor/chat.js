// The student's chat: sends questions over the socket, shows each state (sending, waiting
// for the teacher, answered, failed with a retry), and catches up from the last version
// it has after every reconnect. Only the server's sanitised "html" is inserted as HTML;
// everything else is inserted as text.
"use strict";
(function () {
  const chat = document.getElementById("chat");
  if (!chat) return;
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("question");
  const errorBox = document.getElementById("composer-error");
  const allowance = document.getElementById("allowance");
  const closedNotice = document.getElementById("closed-notice");
  const sendButton = form.querySelector("button[type=submit]");
  const status = document.getElementById("connection");
  const counter = document.getElementById("counter");
  const jump = document.getElementById("jump");
  const t = chat.dataset;
  const maxChars = parseInt(t.maxChars, 10);
  const SEND_TIMEOUT_MS = 15000;
  let version = parseInt(t.version, 10) || 0;
  const unsent = [];  // questions typed while offline, each with its idempotency key
  const timers = new Map();  // client_id -> timeout that marks a question failed

  function newId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).slice(0, 64);
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 160;
  }

  function scrollToEnd(smooth) {
    window.scrollTo({ top: document.documentElement.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    jump.hidden = true;
  }

  function byClientId(clientId) {
    return Array.from(list.querySelectorAll("li[data-client-id]")).find(function (li) {
      return li.dataset.clientId === clientId;
    });
  }

  function waitingBody(body) {
    const wrap = document.createElement("span");
    wrap.className = "waiting";
    const dots = document.createElement("span");
    dots.className = "dots";
    dots.setAttribute("aria-hidden", "true");
    dots.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
    wrap.append(dots, document.createTextNode(" " + t.textReviewing));
    body.replaceChildren(wrap);
  }

  function fillBody(li, m) {
    const body = li.querySelector(".body");
    const key = m.state + "|" + (m.html || m.text);
    if (body.dataset.key === key) return;  // unchanged: keep KaTeX's rendering
    body.dataset.key = key;
    body.classList.toggle("md", m.state === "answered" || m.state === "sent" || m.state === "school");
    if (m.state === "reviewing") {
      waitingBody(body);
    } else if (m.state === "declined") {
      body.textContent = t.textDeclined;
    } else if (m.html) {
      body.innerHTML = m.html;  // nh3-sanitised on the server (tutor/rendering.py)
      window.TutorMath && window.TutorMath.render(body);
    } else {
      const p = document.createElement("p");
      p.textContent = m.text;
      body.replaceChildren(p);
    }
  }

  function ensureItem(m) {
    let li = list.querySelector('li[data-id="' + m.id + '"]');
    if (!li && m.client_id) li = byClientId(m.client_id);
    if (!li) {
      li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "who";
      const body = document.createElement("div");
      body.className = "body";
      body.dir = "auto";  // Arabic or Hebrew text reads right to left, with its numbers in place
      li.append(who, body);
      list.append(li);
    }
    return li;
  }

  function render(m) {
    const hint = list.querySelector(".hint");
    if (hint) hint.remove();
    const follow = nearBottom();
    const isNew = !list.querySelector('li[data-id="' + m.id + '"]');
    const li = ensureItem(m);
    const wasAnswered = li.classList.contains("answered");
    li.dataset.id = m.id;
    if (m.client_id) {
      li.dataset.clientId = m.client_id;
      clearTimeout(timers.get(m.client_id));
      timers.delete(m.client_id);
    }
    li.className = "message " + m.sender + " " + m.state;
    li.querySelector(".who").textContent = m.sender === "student" ? t.textYou : m.sender === "school" ? t.textSchool : t.textTutor;
    const note = li.querySelector(".note");
    if (note) note.remove();
    fillBody(li, m);
    if (t.untitled && m.sender === "student" && m.text) nameConversation(m.text);
    if (follow || (isNew && m.sender === "student")) scrollToEnd(true);
    else if ((m.sender === "tutor" && m.state === "answered" && !wasAnswered) || (m.sender === "school" && isNew)) jump.hidden = false;
  }

  // The server names a conversation after its first question: show that name at once.
  // As tutor.text.title_from: the first line, cut at a whole word, with an ellipsis.
  function titleFrom(text, limit) {
    limit = limit || 60;
    const line = text.split("\n")[0].split(/\s+/).filter(Boolean).join(" ");
    if (line.length <= limit) return line;
    let cut = line.slice(0, limit - 1);
    if (line[limit - 1] !== " " && cut.includes(" ")) cut = cut.slice(0, cut.lastIndexOf(" "));
    return cut.replace(/[ ,;:.-]+$/, "") + "…";
  }

  function nameConversation(text) {
    delete chat.dataset.untitled;
    const title = titleFrom(text);
    const h1 = chat.querySelector(".chat-title");
    document.title = document.title.replace(h1.textContent, title);
    h1.textContent = title;
    window.TutorMath && window.TutorMath.renderText(h1);
  }

  // How long the teacher will likely take, from the server's estimate (seconds only).
  // While the model is loading or absent, say so, and ask again every few seconds.
  const lang = document.documentElement.lang || "en";
  function inUnits(value, unit) {
    try {
      return new Intl.NumberFormat(lang, { style: "unit", unit: unit, unitDisplay: "long" }).format(value);
    } catch (e) {
      return value + (unit === "second" ? " s" : " min");
    }
  }
  let modelPoll = null;
  function showWaits(waits) {
    let modelAway = false;
    waits.forEach(function (w) {
      const li = list.querySelector('li.reviewing[data-id="' + w.reply_id + '"]');
      if (!li || typeof w.seconds !== "number") return;
      if (w.model === "loading" || w.model === "none") {
        modelAway = true;
        const eta = typeof w.model_eta_s === "number" ? w.model_eta_s : 60;
        const time = eta < 90 ? inUnits(Math.max(5, Math.round(eta / 5) * 5), "second") : inUnits(Math.round(eta / 60), "minute");
        setNote(li, w.model === "loading" ? t.textModelLoading.replace("%(time)s", time) : t.textModelNone);
        return;
      }
      setNote(li, t.textEta.replace("%(time)s", inUnits(Math.max(1, Math.round(w.seconds / 60)), "minute")));
    });
    clearTimeout(modelPoll);
    if (modelAway) modelPoll = setTimeout(function () { socket.send({ type: "wait" }); }, 10000);
  }

  function setNote(li, text) {
    let note = li.querySelector(".note");
    if (!note) {
      note = document.createElement("p");
      note.className = "note";
      li.append(note);
    }
    note.textContent = text;
    return note;
  }

  function showLocal(text, clientId) {
    let li = byClientId(clientId);
    if (!li) {
      li = document.createElement("li");
      li.dataset.clientId = clientId;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = t.textYou;
      const body = document.createElement("div");
      body.className = "body";
      body.dir = "auto";
      const p = document.createElement("p");
      p.textContent = text;
      body.append(p);
      li.append(who, body);
      const hint = list.querySelector(".hint");
      if (hint) hint.remove();
      list.append(li);
    }
    li.className = "message student sending";
    setNote(li, t.textSending);
    scrollToEnd(false);
    clearTimeout(timers.get(clientId));
    timers.set(clientId, setTimeout(function () {
      if (!li.dataset.id) failed(li, clientId, text);
    }, SEND_TIMEOUT_MS));
    return li;
  }

  function failed(li, clientId, text) {
    li.className = "message student failed";
    const note = setNote(li, t.textFailed + " ");
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "link retry";
    retry.textContent = t.textRetry;
    retry.addEventListener("click", function () {
      errorBox.textContent = "";
      showLocal(text, clientId);
      send({ type: "ask", text: text, client_id: clientId });  // same key: saved at most once
      input.focus();
    });
    note.append(retry);
  }

  const socket = window.TutorSocket(t.socket, {
    open: function () {
      status.textContent = "";
      chat.classList.remove("offline");
      socket.send({ type: "sync", since: version });
      while (unsent.length) socket.send(unsent.shift());
    },
    close: function (event) {
      window.TutorSocket.showClosed(status, event, t);
      chat.classList.add("offline");
    },
    frame: function (frame) {
      if (frame.type === "messages") {
        frame.messages.forEach(render);
        version = Math.max(version, frame.version || 0);
        if (frame.wait) showWaits(frame.wait);
      } else if (frame.type === "allowance") {
        if (allowance) {
          allowance.textContent = t.textAllowance.replace("%(hour)s", frame.hour_left).replace("%(day)s", frame.day_left);
        }
      } else if (frame.type === "availability") {
        showAvailability(frame.closed || "");
      } else if (frame.type === "wait") {
        showWaits(frame.wait || []);
      } else if (frame.type === "error") {
        errorBox.textContent = frame.message;
        if (frame.client_id) {
          const li = byClientId(frame.client_id);
          if (li && !li.dataset.id) {
            clearTimeout(timers.get(frame.client_id));
            failed(li, frame.client_id, li.querySelector(".body").textContent);
          }
        }
      }
    },
  });

  // The teacher paused the class, opened it again or changed its hours, while this page
  // was open: "closed" is the reason the student may not ask now, "" when they may.
  function showAvailability(closed) {
    closedNotice.textContent = closed;
    closedNotice.hidden = !closed;
    form.classList.toggle("closed", Boolean(closed));
    input.disabled = Boolean(closed);
    sendButton.disabled = Boolean(closed);
    if (!closed) errorBox.textContent = "";
  }

  function send(frame) {
    if (!socket.send(frame)) unsent.push(frame);  // sent once on reconnect, same key
  }

  function updateCounter() {
    const left = maxChars - input.value.length;
    counter.textContent = left < maxChars * 0.2 ? t.textCharsLeft.replace("%(n)s", left) : "";
    counter.classList.toggle("low", left < 50);
  }

  function autoGrow() {
    input.style.height = "auto";  // CSSOM, not a style attribute in the markup: allowed by the CSP
    input.style.height = Math.min(input.scrollHeight + 2, window.innerHeight * 0.4) + "px";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    errorBox.textContent = "";
    if (!text) { input.focus(); return; }
    if (text.length > maxChars) { errorBox.textContent = t.textTooLong; return; }
    const clientId = newId();
    showLocal(text, clientId);
    send({ type: "ask", text: text, client_id: clientId });
    input.value = "";
    autoGrow();
    updateCounter();
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", function () { autoGrow(); updateCounter(); });
  jump.addEventListener("click", function () { scrollToEnd(true); });
  window.addEventListener("scroll", function () { if (nearBottom()) jump.hidden = true; }, { passive: true });

  scrollToEnd(false);
})();
