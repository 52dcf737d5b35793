// The class monitor: the rows come from the review socket ("monitor" frames), sent again
// whenever a reply of the class changes; waiting times tick here between frames. Text is
// inserted with textContent only.
"use strict";
(function () {
  const root = document.getElementById("monitor");
  if (!root) return;
  const texts = root.dataset;
  const classroomId = Number(texts.classroom);
  const tbody = document.getElementById("monitor-rows");
  const status = document.getElementById("monitor-status");
  const filter = document.getElementById("monitor-flag");
  let rows = null; // the last frame's rows; null until the first frame (the page's rows stay)
  let received = 0; // when those rows were read (their wait_s is as of then)

  function durationText(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    const minutes = Math.floor((seconds % 3600) / 60);
    return Math.floor(seconds / 3600) + " h " + (minutes < 10 ? "0" : "") + minutes;
  }

  function shown(row) {
    const flag = filter.value;
    if (!flag) return true;
    if (flag === "any") return row.flags.length > 0;
    return row.flags.some(function (f) { return f.code === flag; });
  }

  function cell(tr, child) {
    const td = document.createElement("td");
    if (typeof child === "string") td.textContent = child; else if (child) td.append(child);
    tr.append(td);
    return td;
  }

  function render() {
    if (rows === null) return;
    const visible = rows.filter(shown);
    const out = [];
    visible.forEach(function (row) {
      const tr = document.createElement("tr");
      tr.dataset.state = row.state;
      const link = document.createElement("a");
      link.href = texts.conversationUrl.replace(/\/0\/$/, "/" + row.conversation_id + "/");
      link.textContent = row.student;
      cell(tr, link);
      const question = cell(tr, row.question.length > 140 ? row.question.slice(0, 139) + "…" : row.question);
      question.dir = "auto";
      const state = cell(tr, null);
      const badge = document.createElement("span");
      badge.className = "state state-" + row.state;
      badge.textContent = row.state_label;
      state.append(badge);
      row.flags.forEach(function (f) {
        const span = document.createElement("span");
        span.className = "flag flag-" + f.code;
        span.textContent = f.label;
        state.append(" ", span);
      });
      const wait = cell(tr, durationText(row.wait_s));
      wait.dataset.wait = row.wait_s;
      if (row.waiting) wait.dataset.waiting = "1";
      out.push(tr);
    });
    if (!out.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, texts.textEmpty);
      td.colSpan = 4;
      td.className = "muted";
      out.push(tr);
    }
    tbody.replaceChildren.apply(tbody, out);
  }

  function tick() {
    if (rows === null) return;
    const elapsed = (Date.now() - received) / 1000;
    tbody.querySelectorAll("td[data-waiting]").forEach(function (td) {
      td.textContent = durationText(Number(td.dataset.wait) + elapsed);
    });
  }

  filter.addEventListener("change", function () {
    const url = new URL(location.href);
    if (filter.value) url.searchParams.set("flag", filter.value); else url.searchParams.delete("flag");
    history.replaceState(null, "", url);
    if (rows === null) { location.assign(url); return; }
    render();
  });

  const socket = window.TutorSocket(texts.socket, {
    open: function () {
      status.textContent = texts.textLive;
      socket.send({ type: "monitor", classroom_id: classroomId });
    },
    frame: function (frame) {
      if (frame.type === "monitor" && frame.classroom_id === classroomId) {
        rows = frame.rows;
        received = Date.now();
        root.dataset.frames = String(Number(root.dataset.frames || 0) + 1); // for tests
        render();
      }
    },
    close: function (event) {
      window.TutorSocket.showClosed(status, event, texts);
    },
  });
  setInterval(tick, 5000);
})();
