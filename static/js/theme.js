// Loaded in <head> without defer, before the body is drawn: the chosen theme (light, dark) is on
// <html> from the first paint, so a page never flashes the other one. "system" (no attribute)
// follows prefers-color-scheme in static/css/app.css. The toggle itself is in static/js/app.js.
(function () {
  "use strict";
  try {
    var theme = localStorage.getItem("dagsapp.theme");
    if (theme === "light" || theme === "dark") document.documentElement.setAttribute("data-theme", theme);
  } catch (e) { /* storage blocked: follow the system */ }
})();
