// The live review queue: one card per draft, filled from the server's JSON, drafts
// streaming in, actions sent with fetch (CSRF-protected), the whole queue re-read on
// every reconnect. Keyboard first: J/K move, A approves, E edits, R rejects, G asks for
// a new draft, I includes the students who asked since the card was opened, Ctrl+Enter
// approves while editing, Esc leaves a field.
// A group's card sends back, with each decision, the other questions it displayed
// ("members"); the server answers those and no others. Once the teacher has opened the
// card, questions that join are not added silently: the card says how many asked since,
// and I (or the button) adds them.
// Text goes in with textContent; only the server's sanitised "html" goes in as HTML.
"use strict";
(function () {
  const queue = document.getElementById("queue");
  if (!queue) return;
  const t = queue.dataset;
  const lang = document.documentElement.lang || "en";
  const cards = document.getElementById("cards");
  const template = document.getElementById("card-template");
  const count = document.getElementById("queue-count");
  const oldest = document.getElementById("queue-oldest");
  const status = document.getElementById("connection");
  const announce = document.getElementById("announce");
  const toggle = document.getElementById("notify-toggle");
  const byId = new Map();
  const baseTitle = document.title;
  const SOUND_KEY = "tutor.review.sound";
  let ready = false;  // no beep for the drafts already waiting when the page opens

  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; });
  }
  // The page language's plural rule: French says "0 brouillon", English "0 drafts".
  const pluralRules = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;
  function plural(key, n) {
    const one = pluralRules ? pluralRules.select(n) === "one" : n === 1;
    return fmt(one ? t[key + "One"] : t[key + "Other"], { n: n });
  }
  function setText(el, text) { if (el) el.textContent = text; }
  // Two things said in a row (a decision, then the card it handed on) are read together.
  let said = "", saidAt = 0;
  function say(text) {
    const now = Date.now();
    said = now - saidAt < 1500 && said ? said + " " + text : text;
    saidAt = now;
    const current = said;
    announce.textContent = "";
    setTimeout(function () { announce.textContent = current; }, 50);
  }

  // How long ago, in the page's language ("3 minutes ago", "il y a 3 minutes").
  const relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  function ago(iso) {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (!relative) return Math.round(seconds / 60) + " min";
    if (seconds < 60) return relative.format(-Math.round(seconds), "second");
    if (seconds < 3600) return relative.format(-Math.round(seconds / 60), "minute");
    return relative.format(-Math.round(seconds / 3600), "hour");
  }
  function duration(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    const minutes = Math.round(seconds / 60);
    try {
      if (seconds < 60) return new Intl.NumberFormat(lang, { style: "unit", unit: "second", unitDisplay: "long" }).format(seconds);
      if (minutes < 60) return new Intl.NumberFormat(lang, { style: "unit", unit: "minute", unitDisplay: "long" }).format(minutes);
      return new Intl.NumberFormat(lang, { style: "unit", unit: "hour", unitDisplay: "long", maximumFractionDigits: 1 }).format(minutes / 60);
    } catch (e) {
      return minutes + " min";
    }
  }

  // --- Notifications: the title always shows the count; a beep if the teacher wants one.
  toggle.checked = localStorage.getItem(SOUND_KEY) !== "off";
  toggle.addEventListener("change", function () {
    localStorage.setItem(SOUND_KEY, toggle.checked ? "on" : "off");
    if (toggle.checked) beep();
  });
  let audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.4);
    } catch (e) { /* no audio here: the title still says it */ }
  }
  function newDraftArrived() {
    queue.dataset.lastNewDraft = String(Date.now());
    if (toggle.checked) beep();
    say(t.textNewDraft);
  }

  // --- The header: how many wait, and for how long the oldest has.
  function refreshCount() {
    const all = Array.from(byId.values());
    const toReview = all.filter(function (c) { return /awaiting_review|failed/.test(c.dataset.status); }).length;
    const writing = all.filter(function (c) { return /queued|drafting/.test(c.dataset.status); }).length;
    let text = all.length === 0 ? t.textNone : plural("textToReview", toReview);
    if (writing) text += " · " + fmt(t.textBeingWritten, { n: writing });
    if (count.textContent !== text) count.textContent = text;
    document.title = (toReview ? "(" + toReview + ") " : "") + baseTitle;
    refreshTimes();
    let empty = cards.querySelector(".empty");
    if (all.length === 0 && !empty) {
      empty = document.createElement("li");
      empty.className = "empty";
      const title = document.createElement("p");
      title.className = "empty-title";
      title.textContent = t.textEmptyTitle || "";
      const p = document.createElement("p");
      p.textContent = t.textEmpty;
      empty.append(title, p);
      cards.append(empty);
    } else if (all.length > 0 && empty) {
      empty.remove();
    }
  }
  function refreshTimes() {
    let first = null;
    byId.forEach(function (card) {
      const asked = card.dataset.askedAt;
      if (!asked) return;
      setText(card.querySelector(".waited"), fmt(t.textAsked, { when: ago(asked) }));
      if (!first || asked < first) first = asked;
    });
    oldest.textContent = first ? "· " + fmt(t.textOldest, { time: duration(first) }) : "";
  }
  setInterval(refreshTimes, 15000);

  // --- Cards.
  function wire(card, id) {
    card.querySelectorAll("[id], [for], [aria-labelledby], [aria-controls], [aria-describedby]").forEach(function (el) {
      ["id", "for", "aria-labelledby", "aria-controls", "aria-describedby"].forEach(function (name) {
        const v = el.getAttribute(name);
        if (v && v.indexOf("card-new-") >= 0) el.setAttribute(name, v.split("card-new-").join("card-" + id + "-"));
      });
    });
    const v = card.getAttribute("aria-labelledby");
    if (v) card.setAttribute("aria-labelledby", v.split("card-new-").join("card-" + id + "-"));
    card.querySelectorAll("form").forEach(function (form) {
      // getAttribute: a clone not yet in the page resolves form.action against no URL.
      form.setAttribute("action", form.getAttribute("action").replace(/\/0\/(\w+\/)$/, "/" + id + "/$1"));
    });
    listen(card);
  }

  function listen(card) {
    card.querySelectorAll("form").forEach(function (form) {
      form.addEventListener("submit", function (event) { event.preventDefault(); act(card, form); });
    });
    card.querySelector("textarea.draft").addEventListener("input", function (event) {
      card.dataset.edited = "1";
      // The badge counts the teacher's text at once; the checks' answer then confirms it.
      const n = event.target.value.trim().split(/\s+/).filter(Boolean).length;
      const words = card.querySelector(".words");
      words.hidden = !n;
      if (n) words.textContent = plural("textWords", n);
      checkEdit(card);
      showToAll(card);
    });
    card.querySelector(".include-new").addEventListener("click", function () { includeNew(card); });
    card.querySelector(".open-reject").addEventListener("click", function () { openPanel(card, "reject"); });
    card.querySelector(".open-regenerate").addEventListener("click", function () { openPanel(card, "regenerate"); });
    card.querySelectorAll(".panel .cancel").forEach(function (b) {
      b.addEventListener("click", function () { closePanels(card); card.focus(); });
    });
    card.querySelectorAll(".chip-button[data-instruction]").forEach(function (b) {
      b.addEventListener("click", function () {
        const form = card.querySelector("form.regenerate");
        form.querySelector("input[name=instruction]").value = b.dataset.instruction;
        form.requestSubmit();
      });
    });
    card.addEventListener("focusin", function () { card.dataset.opened = "1"; claimCard(card); });
    card.addEventListener("focusout", function (event) {
      if (!card.contains(event.relatedTarget)) releaseCard(card);
    });
    closePanels(card);
  }

  function openPanel(card, name) {
    closePanels(card);
    const panel = card.querySelector("form." + name);
    panel.hidden = false;
    card.querySelector(".open-" + name).setAttribute("aria-expanded", "true");
    const field = panel.querySelector("textarea, .chip-button, input:not([type=hidden])");
    if (field) field.focus();
  }
  function closePanels(card) {
    card.querySelectorAll("form.panel").forEach(function (p) { p.hidden = true; });
    card.querySelectorAll(".open-reject, .open-regenerate").forEach(function (b) { b.setAttribute("aria-expanded", "false"); });
  }

  // Hook: tell the server this teacher is looking at the draft, so that others see it.
  // The route exists when the template could reverse 'review_claim'.
  const claimedAt = new Map();
  function claimCard(card) {
    const id = card.dataset.id;
    if (!t.claimUrl || !id) return;
    if (Date.now() - (claimedAt.get(id) || 0) < 30000) return;
    claimedAt.set(id, Date.now());
    const token = card.querySelector("input[name=csrfmiddlewaretoken]");
    const body = new FormData();
    if (token) body.append("csrfmiddlewaretoken", token.value);
    fetch(t.claimUrl.replace("/0/", "/" + id + "/"), {
      method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" },
    }).then(function (response) {
      return response.json().then(function (data) {
        if (data.reply && byId.has(data.reply.id)) render(data.reply);
        else if (response.status === 409 && data.claimed_by) {
          const claimed = card.querySelector(".claimed");
          claimed.textContent = fmt(t.textClaimed, { who: data.claimed_by });
          claimed.hidden = false;
        }
      });
    }).catch(function () { /* claiming is a courtesy; the review itself decides races */ });
  }

  // Walking away from a card lets another reviewer take it at once, not after the lease.
  function releaseCard(card) {
    const id = card.dataset.id;
    if (!t.claimUrl || !id || !claimedAt.has(id)) return;
    claimedAt.delete(id);
    const token = card.querySelector("input[name=csrfmiddlewaretoken]");
    const body = new FormData();
    if (token) body.append("csrfmiddlewaretoken", token.value);
    body.append("release", "1");
    fetch(t.claimUrl.replace("/0/", "/" + id + "/"), {
      method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" },
    }).catch(function () { /* the lease runs out by itself */ });
  }

  function renderHistory(card, history) {
    const ol = card.querySelector(".history");
    ol.replaceChildren();
    (history || []).forEach(function (h) {
      const li = document.createElement("li");
      li.className = "turn " + h.sender;
      const who = document.createElement("span");
      who.className = "turn-who";
      who.textContent = h.sender === "student" ? t.textStudent : h.sender === "school" ? t.textSchool : t.textTutor;
      const body = document.createElement("div");
      body.className = "turn-text md";
      body.dir = "auto";
      if (h.html) body.innerHTML = h.html;  // nh3-sanitised on the server
      else body.textContent = h.text;
      li.append(who, body);
      ol.append(li);
    });
    ol.hidden = !(history && history.length);
    card.querySelector(".thread-start").hidden = !ol.hidden;
    window.TutorMath && window.TutorMath.render(ol);
  }

  // --- Flags and the checks line: from the worker's checks of the draft, or, once the
  // teacher edits it, from the same checks on their text (asked as they type).
  function renderChecks(card, reply) {
    const flags = card.querySelector(".flags");
    flags.replaceChildren();
    (reply.flags || []).forEach(function (f) {
      const li = document.createElement("li");
      li.className = "flag flag-" + String(f.code).replace(/[^a-z_]/g, "") + (f.tier ? " tier-" + Number(f.tier) : "");
      li.textContent = f.label;
      flags.append(li);
    });
    flags.hidden = !(reply.flags && reply.flags.length);
    const box = card.querySelector(".checks");
    if (!box) return;
    const checks = reply.checks || { line: "", errors: [], state: "" };
    const line = box.querySelector(".checks-line");
    line.className = "checks-line checks-" + (String(checks.state || "none").replace(/[^a-z]/g, "") || "none");
    setText(box.querySelector(".checks-text"), checks.line || "");
    const errors = box.querySelector(".maths-errors");
    errors.replaceChildren();
    (checks.errors || []).forEach(function (e) {
      const li = document.createElement("li");
      li.textContent = e;
      errors.append(li);
    });
    errors.hidden = !(checks.errors && checks.errors.length);
    box.hidden = !checks.line;
  }
  // The course passages the draft was written with (tutor.material): document, page, excerpt.
  function renderSources(card, sources) {
    const box = card.querySelector(".sources");
    if (!box) return;
    const list = box.querySelector(".sources-list");
    list.replaceChildren();
    sources.forEach(function (s) {
      const li = document.createElement("li");
      const at = document.createElement("span");
      at.className = "source-where";
      const doc = document.createElement("span");
      doc.className = "source-document";
      doc.dir = "auto";
      doc.textContent = s.document;
      at.append(doc);
      if (s.where) at.append(", " + s.where);
      const q = document.createElement("q");
      q.className = "source-excerpt";
      q.dir = "auto";
      q.textContent = s.excerpt;
      li.append(at, " ", q);
      list.append(li);
    });
    setText(box.querySelector(".sources-count"), String(sources.length));
    box.hidden = !sources.length;
  }
  const checkTimers = new Map();
  function checkEdit(card) {
    const id = card.dataset.id;
    if (!t.checkUrl || !id) return;
    clearTimeout(checkTimers.get(id));
    checkTimers.set(id, setTimeout(function () {
      const token = card.querySelector("input[name=csrfmiddlewaretoken]");
      const body = new FormData();
      if (token) body.append("csrfmiddlewaretoken", token.value);
      body.append("text", card.querySelector("textarea.draft").value);
      fetch(t.checkUrl.replace("/0/", "/" + id + "/"), {
        method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" },
      }).then(function (response) { return response.ok ? response.json() : null; }).then(function (data) {
        if (!data || !data.reply || !card.dataset.edited) return;
        renderChecks(card, data.reply);
        const words = card.querySelector(".words");
        words.hidden = !data.reply.words;
        if (data.reply.words) words.textContent = plural("textWords", data.reply.words);
      }).catch(function () { /* the checks line stays as it was; approving still works */ });
    }, 400));
  }

  function renderExtras(card, reply) {
    // An edited card's flags describe the teacher's text, not the model's draft.
    if (card.dataset.edited) checkEdit(card);
    else renderChecks(card, reply);
    renderGroup(card, reply);
    const alertLine = card.querySelector(".alert-line");
    const alertId = reply.safety && reply.safety.alert_id;
    alertLine.hidden = !alertId;
    if (alertId) alertLine.querySelector("a").href = t.alertUrl.replace("/0/", "/" + Number(alertId) + "/");
    const claimed = card.querySelector(".claimed");
    const other = reply.claimed_by && !reply.claimed_by_me;
    claimed.hidden = !other;
    if (other) claimed.textContent = fmt(t.textClaimed, { who: reply.claimed_by });
    const model = card.querySelector(".model");
    model.hidden = !reply.model;
    if (reply.model) model.textContent = fmt(t.textModel, { model: reply.model });
    if (reply.model_name) model.title = reply.model_name;
    else model.removeAttribute("title");
    const words = card.querySelector(".words");
    if (card.dataset.edited) return;
    words.hidden = !reply.words;
    if (reply.words) words.textContent = plural("textWords", reply.words);
  }

  // --- Alike questions: who the card shows, who asked since it was opened.
  function idList(value) {
    return (value || "").split(",").filter(Boolean).map(Number);
  }
  function renderGroup(card, reply) {
    const members = (reply.group && reply.group.members) || [];
    const current = members.filter(function (m) { return m.reply_id !== reply.id; });
    card._members = members;
    const previous = idList(card.dataset.members);
    let shown;
    if (!card.dataset.opened || card.dataset.members === undefined) {
      shown = current.map(function (m) { return m.reply_id; });
    } else {
      // Opened: keep what the teacher saw (less any that left the group meanwhile).
      shown = previous.filter(function (id) { return current.some(function (m) { return m.reply_id === id; }); });
    }
    showMembers(card, reply.id, shown);
  }
  function showMembers(card, ownId, shown) {
    const members = card._members || [];
    card.dataset.members = shown.join(",");
    card.querySelectorAll("input[name=members]").forEach(function (input) { input.value = card.dataset.members; });
    const onCard = members.filter(function (m) { return m.reply_id === ownId || shown.indexOf(m.reply_id) >= 0; });
    const size = 1 + shown.length;
    const chip = card.querySelector(".group");
    chip.hidden = size < 2;
    if (size > 1) chip.textContent = plural("textGroup", size);
    const box = card.querySelector(".group-box");
    box.hidden = size < 2;
    const list = box.querySelector(".group-list");
    list.replaceChildren();
    onCard.forEach(function (m) {
      const li = document.createElement("li");
      const who = document.createElement("span");
      who.className = "group-student";
      who.textContent = m.student;
      const asked = document.createElement("span");
      asked.className = "group-question";
      asked.textContent = m.question;
      li.append(who, " ", asked);
      list.append(li);
    });
    const newcomers = members.filter(function (m) { return m.reply_id !== ownId && shown.indexOf(m.reply_id) < 0; });
    const notice = card.querySelector(".group-new");
    const text = newcomers.length ? plural("textAskedSince", newcomers.length) : "";
    if (notice.textContent !== text) notice.textContent = text;
    card.querySelector(".include-new").hidden = !newcomers.length;
    card.querySelectorAll(".to-all-text").forEach(function (el) { el.textContent = fmt(t.textToAll, { n: size }); });
    showToAll(card);
  }
  function showToAll(card) {
    const group = idList(card.dataset.members).length > 0;
    card.querySelectorAll(".to-all").forEach(function (line) {
      const inApprove = !!line.closest("form.approve");
      line.hidden = !group || (inApprove && !card.dataset.edited);
      if (line.hidden) line.querySelector("input[type=checkbox]").checked = false;
    });
  }
  function includeNew(card) {
    const members = card._members || [];
    const ownId = Number(card.dataset.id);
    const all = members.filter(function (m) { return m.reply_id !== ownId; }).map(function (m) { return m.reply_id; });
    if (all.length === idList(card.dataset.members).length) return;
    showMembers(card, ownId, all);
    say(fmt(t.textIncluded, { n: 1 + all.length }));
  }

  function render(reply) {
    // Decided, or folded into a group whose lead card stands for it.
    if (reply.decided || reply.status === "grouped") { remove(reply.id); return; }
    let card = byId.get(reply.id);
    const before = card ? card.dataset.status : null;
    if (!card) {
      card = template.content.firstElementChild.cloneNode(true);
      card.dataset.id = reply.id;
      wire(card, reply.id);
      byId.set(reply.id, card);
      card.dataset.priority = (reply.priority || []).join("|");
      insertInOrder(card);
    } else if ((reply.priority || []).join("|") !== card.dataset.priority) {
      // Its place changed (its draft turned out wrong, say): move it, unless the teacher is on it.
      card.dataset.priority = (reply.priority || []).join("|");
      if (!card.contains(document.activeElement) && !card.dataset.edited) insertInOrder(card);
    }
    card.className = "card review " + (tierOf(reply) ? "tier-" + tierOf(reply) + " " : "") + reply.status;
    card.dataset.status = reply.status;
    card.dataset.attempt = reply.attempt;
    card.dataset.askedAt = reply.asked_at;
    setText(card.querySelector(".student"), reply.student);
    setText(card.querySelector(".classroom"), reply.classroom);
    setText(card.querySelector(".question-text"), reply.question);
    renderHistory(card, reply.history);
    renderExtras(card, reply);
    renderSources(card, reply.sources || []);
    const draft = card.querySelector("textarea.draft");
    const writing = reply.status === "queued" || reply.status === "drafting";
    if (!card.dataset.edited) draft.value = reply.draft;
    draft.readOnly = writing;
    draft.setAttribute("aria-busy", writing ? "true" : "false");
    const state = card.querySelector(".state");
    if (reply.status === "queued") {
      // A failure on a queued reply: its model server did not answer; it is tried again.
      state.textContent = reply.failure ? t.textQueued + " " + reply.failure + " " + t.textRetrying : t.textQueued;
    }
    else if (reply.status === "drafting") state.textContent = t.textDrafting;
    else if (reply.status === "failed") state.textContent = t.textFailed + " " + reply.failure;
    else state.textContent = "";
    card.querySelector(".approve-button").disabled = reply.status !== "awaiting_review";
    if (ready && reply.status === "awaiting_review" && before !== "awaiting_review") newDraftArrived();
    refreshCount();
  }

  // The question's safety tier (2 urgent, 1 concern) colours the card; its place in the
  // queue comes with review_priority like every other rule of the order.
  function tierOf(reply) { return (reply.safety && Number(reply.safety.tier)) || 0; }

  // The server's review_priority, "-2|1|2026-…|42": compared part by part, numbers as numbers.
  function comparePriority(a, b) {
    const x = (a || "").split("|"), y = (b || "").split("|");
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if (x[i] === y[i]) continue;
      if (x[i] === undefined) return -1;
      if (y[i] === undefined) return 1;
      const nx = Number(x[i]), ny = Number(y[i]);
      if (x[i] !== "" && y[i] !== "" && !isNaN(nx) && !isNaN(ny)) return nx < ny ? -1 : 1;
      return x[i] < y[i] ? -1 : 1;
    }
    return 0;
  }
  function insertInOrder(card) {
    const later = Array.from(cards.querySelectorAll(".card.review")).find(function (c) {
      return c !== card && comparePriority(c.dataset.priority, card.dataset.priority) > 0;
    });
    if (later) cards.insertBefore(card, later);
    else cards.append(card);
  }

  function remove(id) {
    const card = byId.get(id);
    if (!card) return;
    byId.delete(id);
    const all = Array.from(cards.querySelectorAll(".card.review"));
    const i = all.indexOf(card);
    const next = all[i + 1] || all[i - 1];
    const hadFocus = card.contains(document.activeElement);
    card.remove();
    if (hadFocus) {
      if (next) next.focus();
      else document.getElementById("main").focus();
    }
    refreshCount();
  }

  async function act(card, form) {
    const error = card.querySelector(".card-error");
    error.textContent = "";
    const buttons = card.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    card.setAttribute("aria-busy", "true");
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
        closePanels(card);
        const handedOn = data.reply && data.reply.handed_on;
        const still = handedOn ? " " + plural("textHandedOn", handedOn) : "";
        if (form.classList.contains("approve")) say(t.textApproved + still);
        else if (form.classList.contains("reject")) say(t.textRejected + still);
        else { say(t.textRegenerating); form.reset(); card.focus(); }
        render(data.reply);
      }
    } catch (e) {
      error.textContent = t.textOffline;
    } finally {
      card.removeAttribute("aria-busy");
      buttons.forEach(function (b) { b.disabled = false; });
      card.querySelector(".approve-button").disabled = card.dataset.status !== "awaiting_review";
    }
  }

  // Adopt the cards the server rendered, so the page works before the socket opens.
  cards.querySelectorAll(".card.review[data-id]").forEach(function (card) {
    card.dataset.status = card.className.split(" ").pop();
    card.dataset.members = card.querySelector("input[name=members]").value;
    byId.set(Number(card.dataset.id), card);
    listen(card);
  });
  refreshCount();

  // --- Can the model draft now? Said plainly while it loads or no worker runs; asked
  // again every few seconds until it can.
  const modelStatus = document.getElementById("model-status");
  let modelPoll = null;
  function inUnits(value, unit) {
    try {
      return new Intl.NumberFormat(lang, { style: "unit", unit: unit, unitDisplay: "long" }).format(value);
    } catch (e) {
      return value + (unit === "second" ? " s" : " min");
    }
  }
  function showDrafting(d) {
    const state = (d && d.state) || "unknown";
    modelStatus.dataset.state = state;
    let text = "";
    if (state === "loading") {
      const eta = typeof d.eta_s === "number" ? d.eta_s : 60;
      text = fmt(t.textModelLoading, { time: eta < 90 ? inUnits(Math.max(5, Math.round(eta / 5) * 5), "second") : inUnits(Math.round(eta / 60), "minute") });
    } else if (state === "none") {
      text = t.textModelNone;
    } else if (state === "stalled") {
      text = t.textModelStalled;
    } else if (state === "unavailable") {
      text = t.textModelUnavailable;
    }
    if (modelStatus.textContent !== text) modelStatus.textContent = text;
    clearTimeout(modelPoll);
    if (text) modelPoll = setTimeout(function () { socket.send({ type: "drafting" }); }, 10000);
  }
  showDrafting({ state: modelStatus.dataset.state, eta_s: modelStatus.dataset.eta ? Number(modelStatus.dataset.eta) : null });

  const socket = window.TutorSocket(t.socket, {
    open: function () { status.textContent = ""; socket.send({ type: "sync" }); },
    close: function (event) { window.TutorSocket.showClosed(status, event, t); },
    frame: function (frame) {
      if (frame.type === "queue") {
        const seen = new Set();
        frame.replies.forEach(function (r) { seen.add(r.id); render(r); });
        Array.from(byId.keys()).forEach(function (id) { if (!seen.has(id)) remove(id); });
        refreshCount();
        ready = true;
        showDrafting(frame.drafting);
      } else if (frame.type === "drafting") {
        showDrafting(frame.drafting);
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

  // --- Keyboard.
  function approve(card) {
    const button = card.querySelector(".approve-button");
    if (!button.disabled) card.querySelector("form.approve").requestSubmit(button);
  }
  function currentCard() {
    return document.activeElement && document.activeElement.closest && document.activeElement.closest(".card.review");
  }
  document.addEventListener("keydown", function (event) {
    const card = currentCard();
    const el = document.activeElement;
    const typing = el && (/^(TEXTAREA|SELECT)$/.test(el.tagName) || (el.tagName === "INPUT" && !/^(checkbox|radio|button|submit)$/.test(el.type)));
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && card) {
      event.preventDefault();
      const panel = el.closest("form.panel");
      if (panel) panel.requestSubmit();
      else approve(card);
      return;
    }
    if (event.key === "Escape" && card) {
      if (typing || card.querySelector("form.panel:not([hidden])")) {
        event.preventDefault();
        closePanels(card);
        card.focus();
      }
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if (key === "j" || key === "k") {
      const all = Array.from(cards.querySelectorAll(".card.review"));
      if (!all.length) return;
      event.preventDefault();
      let i = card ? all.indexOf(card) : -1;
      i = key === "j" ? Math.min(all.length - 1, i + 1) : Math.max(0, i - 1);
      all[i].focus();
      all[i].scrollIntoView({ block: "nearest", behavior: "smooth" });
      return;
    }
    if (!card && key === "a") {
      // Nothing selected: select the first draft and say so, rather than approve one unseen.
      const first = cards.querySelector(".card.review[data-id]");
      event.preventDefault();
      const hint = document.getElementById("keys-hint");
      if (hint) hint.textContent = first ? t.textSelectedFirst : t.textNoDraft;
      if (first) { first.focus(); first.scrollIntoView({ block: "nearest" }); }
      return;
    }
    if (!card) return;
    if (key === "a") {
      event.preventDefault();
      approve(card);
    } else if (key === "e") {
      event.preventDefault();
      const draft = card.querySelector("textarea.draft");
      draft.focus();
      draft.setSelectionRange(draft.value.length, draft.value.length);
    } else if (key === "r") {
      event.preventDefault();
      openPanel(card, "reject");
    } else if (key === "g") {
      event.preventDefault();
      openPanel(card, "regenerate");
    } else if (key === "i") {
      event.preventDefault();
      includeNew(card);
    }
  });
})();
