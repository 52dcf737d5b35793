// The course material page: while a document is being read, ask for progress every two
// seconds and show it; reload once everything is read (the page then shows passages).
(function () {
  "use strict";
  const list = document.querySelector(".documents");
  if (!list) return;
  const url = list.dataset.statusUrl;
  function busy() { return list.querySelector(".document.queued, .document.indexing"); }
  function show(d) {
    const li = list.querySelector('.document[data-id="' + d.id + '"]');
    if (!li) return;
    li.className = "document " + d.status;
    li.querySelector(".status-label").textContent = d.status_label;
    let bar = li.querySelector("progress");
    if (d.busy && d.pages) {
      if (!bar) {
        bar = document.createElement("progress");
        bar.className = "progress";
        li.querySelector(".document-status").append(" ", bar);
      }
      bar.max = d.pages;
      bar.value = d.pages_read;
      bar.textContent = d.pages_read + "/" + d.pages;
    }
  }
  function poll() {
    if (!busy()) return;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return setTimeout(poll, 5000);
        data.documents.forEach(show);
        if (data.documents.some(function (d) { return d.busy; })) setTimeout(poll, 2000);
        else window.location.reload();
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
