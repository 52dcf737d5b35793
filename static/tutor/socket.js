// A WebSocket that reconnects by itself, with backoff and jitter, and says when it is
// open so the page can ask for what it missed. Shared by the chat and the review queue.
"use strict";
window.TutorSocket = function (path, handlers) {
  let socket = null;
  let delay = 500;
  let closedForGood = false;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;

  function connect() {
    socket = new WebSocket(url);
    socket.onopen = function () { delay = 500; handlers.open && handlers.open(); };
    socket.onmessage = function (event) {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      handlers.frame(frame);
    };
    socket.onclose = function (event) {
      handlers.close && handlers.close(event);
      // Signed out (4401) or no longer allowed (4403): reconnecting would not help.
      if (event.code === 4401 || event.code === 4403) { closedForGood = true; return; }
      if (closedForGood) return;
      const wait = Math.min(delay, 15000) * (0.5 + Math.random());
      delay *= 2;
      setTimeout(connect, wait);
    };
  }
  connect();
  return {
    send: function (frame) {
      if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); return true; }
      return false;
    },
    isOpen: function () { return socket && socket.readyState === WebSocket.OPEN; },
  };
};

// What a page says when its socket closes, in `element`, with the texts of its dataset:
// the session ended (4401: a link to sign in again, back to this page), access is gone
// (4403), or the connection dropped and is coming back.
window.TutorSocket.showClosed = function (element, event, texts) {
  element.replaceChildren();
  if (event && event.code === 4401) {
    const link = document.createElement("a");
    link.href = texts.loginUrl + "?next=" + encodeURIComponent(location.pathname);
    link.textContent = texts.textSignIn;
    element.append(texts.textSignedOut + " ", link);
  } else if (event && event.code === 4403) {
    element.textContent = texts.textNoAccess;
  } else {
    element.textContent = texts.textOffline;
  }
};
