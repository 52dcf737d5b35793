// Urgent safeguarding alerts on every page of the people who may be alerted: a banner
// kept live over ws/alerts/, an alarm sound and a browser notification for each new alert
// (and again when it moves on to the next person), until someone acknowledges it.
// Banners carry no student and no words: "Open the alert" leads to the audited page.
"use strict";
(function () {
  const box = document.getElementById("safeguarding-alerts");
  if (!box || !window.TutorSocket) return;
  const t = box.dataset;
  const list = box.querySelector(".alert-list");
  const status = box.querySelector(".alert-status");
  const permission = box.querySelector(".notify-permission");
  const SOUNDED_KEY = "tutor.alerts.sounded";  // alert id -> step already sounded, per tab session

  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; });
  }
  function sounded() {
    try { return JSON.parse(sessionStorage.getItem(SOUNDED_KEY) || "{}"); } catch (e) { return {}; }
  }
  function markSounded(id, step) {
    const all = sounded();
    all[id] = step;
    try { sessionStorage.setItem(SOUNDED_KEY, JSON.stringify(all)); } catch (e) { /* private mode */ }
  }

  // --- The alarm: three rising tones. Browsers start audio only after a click or a key
  // on the page; an alarm due before that plays at the first one.
  let audio = null;
  let owed = false;
  function alarm() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") {
        owed = true;
        audio.resume().then(function () { if (audio.state === "running" && owed) { owed = false; play(); } });
        return;
      }
      play();
    } catch (e) { /* no audio here: the banner and the title still say it */ }
  }
  function play() {
    box.dataset.lastAlarm = String(Date.now());
    [660, 880, 990].forEach(function (frequency, i) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      const start = audio.currentTime + i * 0.28;
      osc.type = "square";
      osc.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.15, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(start);
      osc.stop(start + 0.26);
    });
  }
  function unlock() {
    if (owed && audio) audio.resume().then(function () { if (owed) { owed = false; play(); } });
  }
  document.addEventListener("click", unlock, true);
  document.addEventListener("keydown", unlock, true);

  // --- Browser notifications, once the person allows them.
  function canNotify() { return "Notification" in window; }
  function refreshPermission() {
    permission.hidden = !(canNotify() && Notification.permission === "default");
  }
  permission.addEventListener("click", function () {
    if (!canNotify()) return;
    Notification.requestPermission().then(refreshPermission);
  });
  refreshPermission();
  function notify(alert, body) {
    if (!canNotify() || Notification.permission !== "granted") return;
    try {
      const n = new Notification(t.textTitle, { body: body, tag: "tutor-alert-" + alert.id, requireInteraction: true });
      n.onclick = function () { window.focus(); location.href = alert.url; };
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  // --- Banners.
  function body(alert) {
    let text = fmt(t.textBody, { classroom: alert.classroom, category: alert.category_label });
    if (alert.step > 0) text += " " + t.textEscalated;
    return text;
  }
  function itemFor(id) { return list.querySelector('.alert-banner[data-id="' + id + '"]'); }
  // The title starts with a warning sign while an alert is open, whatever else the page
  // writes there (the review queue puts its count in it).
  const WARNING = "\u26a0 ";
  function refreshTitle() {
    const open = list.querySelectorAll(".alert-banner").length > 0;
    const clean = document.title.startsWith(WARNING) ? document.title.slice(WARNING.length) : document.title;
    const wanted = (open ? WARNING : "") + clean;
    if (document.title !== wanted) document.title = wanted;
  }
  const titleElement = document.querySelector("title");
  if (titleElement && window.MutationObserver) {
    new MutationObserver(refreshTitle).observe(titleElement, { childList: true, characterData: true, subtree: true });
  }
  function refreshBox() {
    box.hidden = list.querySelectorAll(".alert-banner").length === 0;
    refreshTitle();
  }
  function say(text) { status.textContent = ""; setTimeout(function () { status.textContent = text; }, 50); }

  function show(alert) {
    let item = itemFor(alert.id);
    if (!alert.open) {
      if (item) {
        item.remove();
        if (alert.acknowledged_by) say(fmt(t.textAcknowledged, { who: alert.acknowledged_by, classroom: alert.classroom }));
      }
      refreshBox();
      return;
    }
    if (!item) {
      item = document.createElement("div");
      item.className = "alert-banner";
      item.setAttribute("role", "alert");
      item.dataset.id = alert.id;
      const title = document.createElement("strong");
      title.className = "alert-title";
      const text = document.createElement("span");
      text.className = "alert-body";
      const link = document.createElement("a");
      link.className = "button alert-open";
      item.append(title, " ", text, " ", link);
      list.append(item);
    }
    item.dataset.step = alert.step;
    item.querySelector(".alert-title").textContent = t.textTitle;
    item.querySelector(".alert-body").textContent = body(alert);
    const link = item.querySelector(".alert-open");
    link.textContent = t.textOpen;
    link.href = alert.url;
    refreshBox();
    const already = sounded()[alert.id];
    if (already === undefined || already < alert.step) {
      markSounded(alert.id, alert.step);
      alarm();
      notify(alert, body(alert));
    }
  }

  // Alerts rendered with the page were sounded on the page that first showed them.
  list.querySelectorAll(".alert-banner[data-id]").forEach(function (item) {
    const id = item.dataset.id;
    const step = Number(item.dataset.step || 0);
    const already = sounded()[id];
    if (already === undefined || already < step) {
      markSounded(id, step);
      alarm();
    }
  });
  refreshBox();

  const socket = window.TutorSocket(t.socket, {
    open: function () { socket.send({ type: "sync" }); },  // what was raised while away
    frame: function (frame) {
      if (frame.type === "alerts") {
        const open = new Set(frame.alerts.map(function (a) { return String(a.id); }));
        list.querySelectorAll(".alert-banner[data-id]").forEach(function (item) {
          if (!open.has(item.dataset.id)) item.remove();
        });
        frame.alerts.forEach(show);
        refreshBox();
      } else if (frame.type === "alert") {
        show(frame.alert);
      }
    },
  });
})();
