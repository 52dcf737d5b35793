// Tell the platform (the frame's parent) that registration is finished, so it closes its dialog.
window.parent.postMessage({ subject: "org.imsglobal.lti.close" }, "*");
